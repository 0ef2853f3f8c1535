"""The adjoint method: gradients of an ODE solve from a second solve backwards in time.

For ``dz/dt = f(t, z, θ)`` and a loss ``L`` of the states at the output times ``t_0 … t_N``,
the adjoint ``a(t) = dL/dz(t)`` obeys ``da/dt = -aᵀ ∂f/∂z`` and ``dL/dθ = ∫_{t_N}^{t_0} -aᵀ ∂f/∂θ dt``
(Chen et al. 2018, algorithm 1). The forward pass solves without building a graph and keeps
only the states at the output times. The backward pass solves the augmented system
``[z, a, dL/dθ]`` (and ``dL/dt`` when the times need gradients) from ``t_N`` back to ``t_0``,
one interval at a time: at each output time ``t_i`` the adjoint jumps by ``∂L/∂z(t_i)``, and
``z`` restarts from the forward pass's ``z(t_i)``. Memory does not grow with the number of
steps; the price is a second solve, and ``z`` reconstructed backwards in time is only as
accurate as that solve.

The backward solve controls the error of the whole augmented state with nodekit's RMS norm;
torchdiffeq takes the maximum of the RMS over ``z``, ``a`` and each parameter tensor, which is
stricter and, in ``benchmarks/adjoint.py``, costs more backward steps for the same gradient error.

``odeint_adjoint`` has ``torchdiffeq.odeint_adjoint``'s calling convention; ``solve_adjoint``
also returns the cost of both passes (the backward one is filled in when gradients are computed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .errors import NonFiniteStateError, SolverError
from .solvers import Solution, SolverStats, solve
from .solvers.base import CALLBACK_NAMES
from .solvers.checks import check_state, check_times

__all__ = ["AdjointSolution", "AdjointStats", "odeint_adjoint", "solve_adjoint"]


@dataclass
class AdjointStats(SolverStats):
    """Cost of the adjoint's backward pass, summed over the intervals between output times.

    ``nfe`` counts evaluations of the augmented dynamics (each is one evaluation of ``f`` and
    one vector-Jacobian product); ``field_nfe`` the extra plain evaluations of ``f`` at the
    output times that gradients with respect to ``t`` need. ``reconstruction_error`` is the
    largest ``|z|`` difference, at the start of each interval, between the state solved
    backwards in time and the forward pass's. All zero / NaN until ``backward()`` has run;
    a later backward pass overwrites them.
    """

    intervals: int = 0
    field_nfe: int = 0
    reconstruction_error: float = math.nan


@dataclass
class AdjointSolution(Solution):
    """A :class:`~nodekit.solvers.base.Solution` (forward ``stats``) plus the backward pass's ``backward`` stats."""

    backward: AdjointStats = field(default_factory=AdjointStats)


class _AugmentedDynamics:
    """The right-hand side of the augmented state ``[z, a, dL/dθ, (dL/dt)]``, flattened to one vector.

    Returns ``[f, -aᵀ ∂f/∂z, -aᵀ ∂f/∂θ, (-aᵀ ∂f/∂t)]``; the vector-Jacobian products come from
    one ``torch.autograd.grad`` call through ``f``. The field's ``callback_step_adjoint``,
    ``callback_accept_step_adjoint`` and ``callback_reject_step_adjoint`` become this dynamics'
    ``callback_step``, ``callback_accept_step`` and ``callback_reject_step``, which the backward solve calls.
    """

    def __init__(self, func: nn.Module, params: Sequence[Tensor], shape: torch.Size, time_grad: bool) -> None:
        self.func, self.params, self.shape, self.time_grad = func, tuple(params), shape, time_grad
        self.n = math.prod(shape)
        for name in CALLBACK_NAMES:
            callback = getattr(func, name + "_adjoint", None)
            if callback is not None:
                setattr(self, name, callback)

    def __call__(self, t: Tensor, state: Tensor) -> Tensor:
        n = self.n
        a = state[n : 2 * n].view(self.shape)
        with torch.enable_grad():
            z = state[:n].view(self.shape).detach().requires_grad_(True)
            t = t.detach().requires_grad_(True) if self.time_grad else t
            f = self.func(t, z)
            inputs = (z, *self.params, t) if self.time_grad else (z, *self.params)
            vjps = torch.autograd.grad(f, inputs, -a, allow_unused=True, materialize_grads=True)
        return torch.cat([f.detach().reshape(-1), *(v.reshape(-1) for v in vjps)])

    def initial_state(self, z: Tensor, a: Tensor, adj_params: Tensor, adj_t: Tensor) -> Tensor:
        parts = [z.reshape(-1), a.reshape(-1), adj_params]
        return torch.cat(parts + [adj_t.reshape(1)] if self.time_grad else parts)


class _OdeintAdjoint(torch.autograd.Function):
    """Forward: a graph-free solve. Backward: the augmented system, interval by interval."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        func: nn.Module,
        y0: Tensor,
        t: Tensor,
        forward_kw: dict[str, Any],
        adjoint_kw: dict[str, Any],
        solution_box: list[AdjointSolution],
        *params: Tensor,
    ) -> Tensor:
        sol = solve(func, y0, t.detach(), **forward_kw)
        solution = AdjointSolution(ts=t, ys=sol.ys, stats=sol.stats, method=sol.method)
        solution_box.append(solution)
        ctx.func, ctx.adjoint_kw, ctx.stats = func, adjoint_kw, solution.backward
        ctx.mean_step = abs(float(t[-1] - t[0])) / max(sol.stats.accepted_steps, 1)
        ctx.time_grad = t.requires_grad
        ctx.save_for_backward(t, sol.ys, *params)
        return sol.ys

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_ys: Tensor) -> tuple[Tensor | None, ...]:
        t, ys, *params = ctx.saved_tensors
        if not torch.isfinite(grad_ys).all():
            raise NonFiniteStateError(
                "the gradient of the loss with respect to the ODE solution contains NaN or Inf, so the "
                "adjoint cannot start; check the loss (e.g. log of zero) and the scale of the outputs"
            )
        dynamics = _AugmentedDynamics(ctx.func, params, ys.shape[1:], ctx.time_grad)
        times = t.detach()
        stats = ctx.stats
        stats.nfe = stats.accepted_steps = stats.rejected_steps = stats.intervals = stats.field_nfe = 0
        stats.reconstruction_error = 0.0

        a = grad_ys[-1]
        adj_params = torch.zeros(sum(p.numel() for p in params), dtype=ys.dtype, device=ys.device)
        adj_t = torch.zeros((), dtype=ys.dtype, device=ys.device)
        time_vjps = torch.zeros_like(times) if ctx.time_grad else None
        n = dynamics.n
        for i in range(len(times) - 1, 0, -1):
            if time_vjps is not None:
                # Moving the output time t_i moves the observed state along f(t_i, z_i).
                dl_dti = torch.dot(ctx.func(times[i], ys[i]).reshape(-1), grad_ys[i].reshape(-1))
                stats.field_nfe += 1
                time_vjps[i] = dl_dti
                adj_t = adj_t - dl_dti
            state = dynamics.initial_state(ys[i], a, adj_params, adj_t)
            interval = times[i - 1 : i + 1].flip(0)
            try:
                sol = solve(dynamics, state, interval, **_backward_settings(ctx.adjoint_kw, ctx.mean_step, interval))
            except SolverError as err:
                raise type(err)(
                    f"in the adjoint's backward solve from t={times[i].item():g} to t={times[i - 1].item():g}: {err}"
                ) from None
            stats.nfe += sol.stats.nfe
            stats.accepted_steps += sol.stats.accepted_steps
            stats.rejected_steps += sol.stats.rejected_steps
            stats.intervals += 1
            end = sol.ys[-1]
            error = (end[:n].view_as(ys[i - 1]) - ys[i - 1]).abs().max().item()
            stats.reconstruction_error = max(stats.reconstruction_error, error)
            # Restart z from the forward pass; the adjoint jumps by the loss's direct gradient at t_{i-1}.
            a = end[n : 2 * n].view_as(ys[i - 1]) + grad_ys[i - 1]
            adj_params = end[2 * n : 2 * n + adj_params.numel()]
            if time_vjps is not None:
                adj_t = end[-1]
        if time_vjps is not None:
            time_vjps[0] = adj_t
        grads_params = [g.view_as(p) for g, p in zip(adj_params.split([p.numel() for p in params]), params)]
        return (None, a, time_vjps, None, None, None, *grads_params)


def _backward_settings(adjoint_kw: dict[str, Any], mean_step: float, interval: Tensor) -> dict[str, Any]:
    """The backward solve's settings; dopri5 starts from the forward pass's mean step.

    The usual starting-step heuristic sizes the first step so that every component moves by
    about atol; dL/dθ, zero at the start and growing fast when the states are large, can drive
    it below the resolution of t (~1e-8 in float32) and the solve stops as an underflow.
    """
    if adjoint_kw["method"] != "dopri5" or "first_step" in adjoint_kw["options"]:
        return adjoint_kw
    span = abs(float(interval[1] - interval[0]))
    return {**adjoint_kw, "options": {**adjoint_kw["options"], "first_step": min(mean_step, span)}}


def _adjoint_parameters(func: Any, adjoint_params: Sequence[Tensor] | None) -> tuple[Tensor, ...]:
    if adjoint_params is None:
        if not isinstance(func, nn.Module):
            raise TypeError(
                f"odeint_adjoint needs func to be a torch.nn.Module (got {type(func).__name__}) so that it "
                "can find the parameters to differentiate; wrap the function in an nn.Module, or pass "
                "adjoint_params=(...) explicitly (adjoint_params=() if it has none)"
            )
        adjoint_params = list(func.parameters())
    params = tuple(adjoint_params)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"adjoint_params must be tensors, got {type(p).__name__}")
    return tuple(p for p in params if p.requires_grad)


def solve_adjoint(
    func: nn.Module,
    y0: Tensor,
    t: Tensor | Sequence[float],
    rtol: float | Tensor = 1e-7,
    atol: float | Tensor = 1e-9,
    method: str | None = None,
    options: dict[str, Any] | None = None,
    *,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
    adjoint_method: str | None = None,
    adjoint_options: dict[str, Any] | None = None,
    adjoint_params: Sequence[Tensor] | None = None,
) -> AdjointSolution:
    """Solve like :func:`nodekit.solvers.solve`, with gradients by the adjoint method.

    Gradients flow to ``y0``, to ``t`` (if it requires them, for any method) and to the
    parameters of ``func`` (or ``adjoint_params``). The backward solve uses ``adjoint_rtol``,
    ``adjoint_atol``, ``adjoint_method`` and ``adjoint_options``, which default to the forward
    pass's settings; options are inherited only by the same method. Per-element tensor ``rtol`` /
    ``atol`` fit the forward solve only: the backward one then needs float ``adjoint_rtol`` /
    ``adjoint_atol``. With a single time in ``t`` the solution is ``y0`` itself (the gradient with
    respect to ``y0`` is the identity, the others zero), as in torchdiffeq. The returned solution's
    ``stats`` are the forward pass's; its ``backward`` stats are filled in by ``backward()``.

    The forward solve calls ``func``'s step callbacks as :func:`~nodekit.solvers.solve` does; the
    backward solve calls ``callback_step_adjoint``, ``callback_accept_step_adjoint`` and
    ``callback_reject_step_adjoint`` the same way (as torchdiffeq), with ``t0`` running from
    ``t[-1]`` back to ``t[0]`` and ``y0`` the flattened augmented state ``[z, a, dL/dθ, (dL/dt)]``.
    """
    params = _adjoint_parameters(func, adjoint_params)
    y0 = check_state(y0)
    t = check_times(t, y0)
    method = method or "dopri5"
    if adjoint_method is None:
        adjoint_method = method
    if adjoint_options is None:
        if adjoint_method != method and options:
            raise ValueError(
                f"adjoint_method={adjoint_method!r} differs from method={method!r}, so the forward options "
                f"{options} cannot be reused for the backward solve; pass adjoint_options as well "
                "(e.g. adjoint_options={})"
            )
        adjoint_options = dict(options or {})
    forward_kw = dict(rtol=rtol, atol=atol, method=method, options=options)
    adjoint_kw = dict(
        rtol=rtol if adjoint_rtol is None else adjoint_rtol,
        atol=atol if adjoint_atol is None else adjoint_atol,
        method=adjoint_method,
        options=adjoint_options,
    )
    for name in ("rtol", "atol"):
        tol = adjoint_kw[name]
        if isinstance(tol, Tensor) and tol.numel() > 1:
            raise ValueError(
                f"adjoint_{name} (which defaults to {name}) must be a float, got a tensor of shape "
                f"{tuple(tol.shape)}: the backward solve's state is the flattened [z, a, dL/dθ], which "
                f"per-element tolerances for y0 do not fit; pass e.g. adjoint_{name}=float({name}.min())"
            )
    box: list[AdjointSolution] = []
    ys = _OdeintAdjoint.apply(func, y0, t, forward_kw, adjoint_kw, box, *params)
    solution = box[0]
    solution.ys = ys
    return solution


def odeint_adjoint(
    func: nn.Module,
    y0: Tensor,
    t: Tensor | Sequence[float],
    rtol: float | Tensor = 1e-7,
    atol: float | Tensor = 1e-9,
    method: str | None = None,
    options: dict[str, Any] | None = None,
    *,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
    adjoint_method: str | None = None,
    adjoint_options: dict[str, Any] | None = None,
    adjoint_params: Sequence[Tensor] | None = None,
) -> Tensor:
    """Like :func:`solve_adjoint` (same arguments), returning only the states, as
    ``torchdiffeq.odeint_adjoint``."""
    return solve_adjoint(
        func, y0, t, rtol, atol, method, options,
        adjoint_rtol=adjoint_rtol, adjoint_atol=adjoint_atol, adjoint_method=adjoint_method,
        adjoint_options=adjoint_options, adjoint_params=adjoint_params,
    ).ys
