"""Four routes to the gradient of a loss through an ODE solve, and the workloads that compare them.

* ``"backprop"``: autograd through every operation of nodekit's solver (the discrete gradient);
* ``"adjoint"``: nodekit's adjoint method, :func:`nodekit.adjoint.odeint_adjoint`;
* ``"torchdiffeq"``: ``torchdiffeq.odeint_adjoint``, an independent implementation;
* ``"finite differences"``: central differences of the loss, one input entry at a time.

:func:`loss_gradients` returns the gradient with respect to the initial state, the output times
and the field's parameters by any route; :func:`memory_workload` is the unit of work whose peak
memory :func:`nodekit.measure.memory.peak_memory` measures, one process per point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..adjoint import odeint_adjoint
from ..fields import ConvField
from ..solvers import odeint

__all__ = ["ROUTES", "Gradients", "loss_gradients", "memory_workload"]

ROUTES: tuple[str, ...] = ("backprop", "adjoint", "torchdiffeq", "finite differences")
"""The gradient routes :func:`loss_gradients` knows."""
Loss = Callable[[Tensor], Tensor]


@dataclass
class Gradients:
    """dL/dy0, dL/dt and dL/dθ (the parameters flattened and concatenated)."""

    y0: Tensor
    t: Tensor
    params: Tensor

    def max_abs_diff(self, other: Gradients) -> dict[str, float]:
        """Largest absolute difference to ``other``, per group of inputs."""
        return {name: (getattr(self, name) - getattr(other, name)).abs().max().item() for name in ("y0", "t", "params")}

    def max_abs(self) -> dict[str, float]:
        return {name: getattr(self, name).abs().max().item() for name in ("y0", "t", "params")}


def _solve(route: str, func: nn.Module, y0: Tensor, t: Tensor, solver: dict[str, Any]) -> Tensor:
    if route == "backprop":
        return odeint(func, y0, t, **solver)
    if route == "adjoint":
        return odeint_adjoint(func, y0, t, **solver)
    if route == "torchdiffeq":
        import torchdiffeq  # the independent implementation; imported only when compared against

        return torchdiffeq.odeint_adjoint(func, y0, t, **solver)
    raise ValueError(f"unknown route {route!r}; choose one of {', '.join(ROUTES)}")


def loss_gradients(
    route: str, func: nn.Module, y0: Tensor, t: Tensor, loss: Loss, eps: float = 1e-6, **solver: Any
) -> Gradients:
    """Gradient of ``loss(odeint(func, y0, t, **solver))`` by ``route`` (one of :data:`ROUTES`).

    ``solver`` holds ``method``, ``rtol``, ``atol``, ``options`` as for :func:`nodekit.solvers.odeint`.
    Finite differences step each entry of ``y0``, ``t`` and the parameters by ``±eps``; use
    float64 and a fixed-step method, whose output is a smooth function of all three.
    """
    params = [p for p in func.parameters() if p.requires_grad]
    if route == "finite differences":
        return _finite_differences(func, y0, t, loss, eps, params, solver)
    y0 = y0.detach().requires_grad_(True)
    t = t.detach().requires_grad_(True)
    grads = torch.autograd.grad(loss(_solve(route, func, y0, t, solver)), [y0, t, *params], allow_unused=True)
    flat = [torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1) for g, p in zip(grads[2:], params)]
    return Gradients(y0=grads[0], t=grads[1], params=torch.cat(flat))


@torch.no_grad()
def _finite_differences(
    func: nn.Module, y0: Tensor, t: Tensor, loss: Loss, eps: float, params: Sequence[Tensor], solver: dict[str, Any]
) -> Gradients:
    y0, t = y0.detach().clone(), t.detach().clone()

    def central(tensor: Tensor) -> Tensor:
        grad = torch.empty_like(tensor)
        flat, out = tensor.view(-1), grad.view(-1)
        for i in range(flat.numel()):
            original = flat[i].item()
            flat[i] = original + eps
            up = loss(odeint(func, y0, t, **solver)).item()
            flat[i] = original - eps
            down = loss(odeint(func, y0, t, **solver)).item()
            flat[i] = original
            out[i] = (up - down) / (2 * eps)
        return grad

    return Gradients(y0=central(y0), t=central(t), params=torch.cat([central(p.data).reshape(-1) for p in params]))


def memory_workload(
    route: str, steps: int, batch: int = 16, channels: int = 16, size: int = 14, seed: int = 0
) -> Callable[[], None]:
    """One forward and backward pass of a conv field (:class:`~nodekit.fields.ConvField`) over
    ``t ∈ [0, 1]`` with ``steps`` Euler steps, by ``route`` (``"backprop"``, ``"adjoint"`` or
    ``"torchdiffeq"``). Returns the pass as a zero-argument callable, for
    :func:`nodekit.measure.memory.peak_memory`."""
    torch.manual_seed(seed)
    field = ConvField(channels)
    y0 = torch.randn(batch, channels, size, size)
    t = torch.tensor([0.0, 1.0])
    # torchdiffeq's grid is arange(0, 1, h), which rounding can stretch by a step; a step of
    # 1/(steps - 0.5) gives ``steps`` steps with both libraries (the last one a half step).
    solver = dict(method="euler", options={"step_size": 1.0 / (steps - 0.5)})

    def work() -> None:
        _solve(route, field, y0, t, solver)[-1].square().mean().backward()

    # A one-step pass first, so one-off costs (autograd engine, thread pools) are in the baseline.
    _solve(route, field, y0[:1], t, dict(method="euler"))[-1].sum().backward()
    return work
