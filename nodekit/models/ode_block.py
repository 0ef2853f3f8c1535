"""An ODE block: the state at ``t1`` of ``dz/dt = f(t, z)`` started from the block's input."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ..adjoint import AdjointStats, solve_adjoint
from ..solvers import SolverStats, solve


class ODEBlock(nn.Module):
    """Continuous-depth layer ``z(t1) = z(0) + ∫₀^{t1} f(t, z(t)) dt``, solved by nodekit.

    ``last_stats`` holds the statistics (NFE, steps) of the most recent forward solve, the
    network's "depth" for that input. With ``adjoint=True`` gradients come from nodekit's
    adjoint method (memory flat in the number of steps) instead of backpropagation through the
    solver; ``last_backward_stats`` then holds the backward pass's cost once it has run.

    With ``t1_range=(low, high)`` every forward pass in training mode ends at a time drawn
    uniformly from that range (from torch's global generator, like dropout); in eval mode the
    block ends at ``t1``. ``last_t1`` is the end time of the most recent forward pass. Use
    :func:`at_end_time` to evaluate a trained model at any other end time.
    """

    def __init__(
        self,
        field: nn.Module,
        t1: float = 1.0,
        method: str = "dopri5",
        rtol: float = 1e-3,
        atol: float = 1e-3,
        options: dict[str, Any] | None = None,
        adjoint: bool = False,
        t1_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        if not t1 > 0:
            raise ValueError(f"t1 must be a positive end time, got {t1!r}")
        if t1_range is not None and not 0 < t1_range[0] <= t1_range[1]:
            raise ValueError(f"t1_range must be (low, high) with 0 < low <= high, e.g. (10, 100); got {t1_range!r}")
        self.t1_range = None if t1_range is None else (float(t1_range[0]), float(t1_range[1]))
        self.field = field
        self.adjoint = adjoint
        self.method, self.rtol, self.atol = method, rtol, atol
        self.options = dict(options or {})
        self.register_buffer("t", torch.tensor([0.0, t1]), persistent=False)
        self.last_stats: SolverStats | None = None
        self.last_backward_stats: AdjointStats | None = None
        self.last_t1: float | None = None

    @property
    def t1(self) -> float:
        """The end time in eval mode (and in training without ``t1_range``)."""
        return float(self.t[-1])

    @t1.setter
    def t1(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"t1 must be a positive end time, got {value!r}")
        self.t = torch.tensor([0.0, float(value)], device=self.t.device)

    def trajectory(self, z0: Tensor, t: Tensor) -> Tensor:
        """States at all times ``t`` (stacked along dim 0)."""
        solver = solve_adjoint if self.adjoint else solve
        sol = solver(self.field, z0, t.to(z0), self.rtol, self.atol, self.method, self.options)
        self.last_stats = sol.stats
        self.last_backward_stats = sol.backward if self.adjoint else None
        return sol.ys

    def forward(self, z0: Tensor) -> Tensor:
        t = self.t
        if self.training and self.t1_range is not None:
            low, high = self.t1_range
            t = torch.tensor([0.0, low + (high - low) * torch.rand(()).item()], device=t.device)
        self.last_t1 = float(t[-1])
        return self.trajectory(z0, t)[-1]

    def extra_repr(self) -> str:
        # adjoint is shown only when on, so the repr (part of training cache keys) of other blocks is unchanged
        adjoint = ", adjoint=True" if self.adjoint else ""
        t1_range = f", t1_range={self.t1_range}" if self.t1_range is not None else ""
        return (f"t1={self.t[-1].item():g}, method={self.method!r}, rtol={_tolerance(self.rtol)}, "
                f"atol={_tolerance(self.atol)}, options={self.options}{adjoint}{t1_range}")


def _tolerance(tol: float | torch.Tensor) -> str:
    """A tolerance for the repr: ``:g`` for a number; every value of a per-element tensor (the repr is
    part of training cache keys, so two blocks with different tolerances must not print alike)."""
    if isinstance(tol, torch.Tensor) and tol.numel() > 1:
        return "tensor([" + ", ".join(f"{v:g}" for v in tol.flatten().tolist()) + "])"
    return f"{float(tol):g}"


def ode_blocks(model: nn.Module) -> list[ODEBlock]:
    return [m for m in model.modules() if isinstance(m, ODEBlock)]


@contextlib.contextmanager
def at_end_time(model: nn.Module, t1: float) -> Iterator[nn.Module]:
    """Inside the ``with`` block every ODE block of ``model`` ends at ``t1`` (random end times
    off); the end times and ranges are restored afterwards. No retraining: the field is the same,
    only the interval of integration changes."""
    blocks = ode_blocks(model)
    if not blocks:
        raise ValueError("at_end_time needs a model with at least one ODEBlock")
    saved = [(b.t, b.t1_range) for b in blocks]
    try:
        for b in blocks:
            b.t1, b.t1_range = t1, None
        yield model
    finally:
        for b, (t, t1_range) in zip(blocks, saved):
            b.t, b.t1_range = t, t1_range


def forward_nfe(model: nn.Module) -> int:
    """NFE of the last forward pass, summed over the model's ODE blocks."""
    return sum(b.last_stats.nfe for b in ode_blocks(model) if b.last_stats is not None)


def backward_nfe(model: nn.Module) -> int:
    """NFE of the last backward pass of the model's adjoint ODE blocks (augmented evaluations), summed.

    Blocks trained by backpropagation through the solver make no evaluations of their own in
    the backward pass and count 0.
    """
    return sum(b.last_backward_stats.nfe for b in ode_blocks(model) if b.last_backward_stats is not None)


def with_solver(model: nn.Module, method: str, step_size: float | None = None, tol: float = 1e-3) -> nn.Module:
    """Switch every ODE block of ``model`` (in place) to another solver and return the model.

    Fixed-grid methods use ``step_size``; ``dopri5`` uses ``rtol = atol = tol``. Used to evaluate a
    trained model with a finer or different solver than it was trained with.
    """
    blocks = ode_blocks(model)
    if not blocks:
        raise ValueError("with_solver needs a model with at least one ODEBlock")
    for block in blocks:
        block.method = method
        block.options = {"step_size": step_size} if method != "dopri5" and step_size is not None else {}
        block.rtol = block.atol = tol
    return model
