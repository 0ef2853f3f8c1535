"""An ODE block: the state at ``t1`` of ``dz/dt = f(t, z)`` started from the block's input."""

from __future__ import annotations

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
    ) -> None:
        super().__init__()
        self.field = field
        self.adjoint = adjoint
        self.method, self.rtol, self.atol = method, rtol, atol
        self.options = dict(options or {})
        self.register_buffer("t", torch.tensor([0.0, t1]), persistent=False)
        self.last_stats: SolverStats | None = None
        self.last_backward_stats: AdjointStats | None = None

    def trajectory(self, z0: Tensor, t: Tensor) -> Tensor:
        """States at all times ``t`` (stacked along dim 0)."""
        solver = solve_adjoint if self.adjoint else solve
        sol = solver(self.field, z0, t.to(z0), self.rtol, self.atol, self.method, self.options)
        self.last_stats = sol.stats
        self.last_backward_stats = sol.backward if self.adjoint else None
        return sol.ys

    def forward(self, z0: Tensor) -> Tensor:
        return self.trajectory(z0, self.t)[-1]

    def extra_repr(self) -> str:
        # adjoint is shown only when on, so the repr (part of training cache keys) of other blocks is unchanged
        adjoint = ", adjoint=True" if self.adjoint else ""
        return f"t1={self.t[-1].item():g}, method={self.method!r}, rtol={self.rtol:g}, atol={self.atol:g}, options={self.options}{adjoint}"


def ode_blocks(model: nn.Module) -> list[ODEBlock]:
    return [m for m in model.modules() if isinstance(m, ODEBlock)]


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
