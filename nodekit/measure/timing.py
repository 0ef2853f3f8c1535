"""Timing of forward and backward passes: by gradient route, and of CNF training steps.

* :func:`time_passes` — forward solve and backward pass of a loss, separately, by backprop or adjoint;
* :func:`backprop_vs_adjoint` — a model's training pass with its ODE blocks on either route;
* :func:`time_training_step` — one training step of a CNF in ``d`` dimensions, exact or Hutchinson trace.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..adjoint import solve_adjoint
from ..fields import MLPField
from ..models.cnf import CNF
from ..models.ode_block import ode_blocks
from ..solvers import solve

__all__ = ["PassCost", "RouteCost", "backprop_vs_adjoint", "time_passes", "time_training_step"]

Loss = Callable[[Tensor], Tensor]


@dataclass
class PassCost:
    """Median seconds and NFE of the forward and the backward pass of one solve."""

    forward_seconds: float
    backward_seconds: float
    forward_nfe: int
    backward_nfe: int


def time_passes(route: str, func: nn.Module, y0: Tensor, t: Tensor, loss: Loss, repeats: int = 5, **solver: Any) -> PassCost:
    """Time the forward solve and the backward pass of ``loss`` separately, for ``"backprop"``
    (whose backward pass re-traverses the recorded graph: no field evaluations of its own) or
    ``"adjoint"`` (nodekit's, whose backward NFE counts augmented evaluations)."""
    if route not in ("backprop", "adjoint"):
        raise ValueError(f"time_passes times 'backprop' or 'adjoint', got {route!r}")
    forward, backward = [], []
    for _ in range(repeats):
        func.zero_grad(set_to_none=True)
        start = time.perf_counter()
        sol = solve_adjoint(func, y0, t, **solver) if route == "adjoint" else solve(func, y0, t, **solver)
        middle = time.perf_counter()
        loss(sol.ys).backward()
        forward.append(middle - start)
        backward.append(time.perf_counter() - middle)
    backward_nfe = sol.backward.nfe if route == "adjoint" else 0
    return PassCost(statistics.median(forward), statistics.median(backward), sol.stats.nfe, backward_nfe)


@dataclass
class RouteCost:
    """Time and solver work of one forward + backward pass of a model, and its gradient."""

    seconds: float
    forward_nfe: int
    backward_nfe: int
    gradient: Tensor


def backprop_vs_adjoint(
    model: nn.Module, x: Tensor, y: Tensor, loss: Callable[[Tensor, Tensor], Tensor], repeats: int = 9
) -> dict[str, RouteCost]:
    """A forward and backward pass of ``model`` with its ODE blocks set to backprop, then to the
    adjoint, alternating (the order flips every repeat, so load on the machine hits both alike).

    Returns, per route (``"backprop"``, ``"adjoint"``), the median time, the NFE of both passes
    (backprop's backward pass re-traverses the forward graph: ``backward_nfe`` is 0) and the
    flattened gradient. The blocks' ``adjoint`` flags are restored afterwards.
    """
    blocks = ode_blocks(model)
    before = [b.adjoint for b in blocks]
    times: dict[str, list[float]] = {"backprop": [], "adjoint": []}
    costs: dict[str, RouteCost] = {}
    try:
        for repeat in range(repeats):
            for route in ("backprop", "adjoint")[:: 1 if repeat % 2 == 0 else -1]:
                for b in blocks:
                    b.adjoint = route == "adjoint"
                model.zero_grad(set_to_none=True)
                start = time.perf_counter()
                loss(model(x), y).backward()
                times[route].append(time.perf_counter() - start)
                gradient = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
                backward_nfe = sum(b.last_backward_stats.nfe for b in blocks if b.last_backward_stats is not None)
                costs[route] = RouteCost(0.0, sum(b.last_stats.nfe for b in blocks), backward_nfe, gradient)
    finally:
        for b, flag in zip(blocks, before):
            b.adjoint = flag
    for route, cost in costs.items():
        cost.seconds = statistics.median(times[route])
    return costs


def time_training_step(dim: int, trace: str, hidden: int = 64, batch: int = 100, repeats: int = 5) -> float:
    """Median wall seconds of one training step's worth of work in ``dim`` dimensions.

    A fresh ``MLPField(dim, (hidden, hidden), time="every layer")`` flow takes one RK4 step (4 evaluations of
    the augmented field) to compute ``log p(x)`` for a batch, then backpropagates through it.
    """
    flow = CNF(MLPField(dim, (hidden, hidden), time="every layer"), dim, t1=0.1, trace=trace, method="rk4")
    x = torch.randn(batch, dim)
    seconds = []
    for _ in range(repeats + 1):  # the first run warms up and is not counted
        start = time.perf_counter()
        flow.log_prob(x).mean().backward()
        seconds.append(time.perf_counter() - start)
    return sorted(seconds[1:])[len(seconds[1:]) // 2]
