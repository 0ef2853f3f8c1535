"""ODE solvers with torchdiffeq's calling convention and solver statistics.

``odeint(func, y0, t)`` returns the states at the times ``t`` stacked along dim 0;
``solve`` returns the same states in a :class:`Solution` that also carries the NFE and
step counts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .base import DEFAULT_MAX_NUM_STEPS, Solution, SolverStats, StepCallbacks
from .checks import VectorField, check_state, check_times, checked_field, reversed_field
from .dopri5 import Dopri5Solver
from .fixed_grid import FixedGridSolver
from .tableaus import EULER, MIDPOINT, RK4, ButcherTableau

FIXED_GRID_METHODS: dict[str, ButcherTableau] = {"euler": EULER, "midpoint": MIDPOINT, "rk4": RK4}
METHODS: tuple[str, ...] = (*FIXED_GRID_METHODS, "dopri5")

__all__ = ["METHODS", "DEFAULT_MAX_NUM_STEPS", "Solution", "SolverStats", "odeint", "solve"]


def _make_solver(method: str, rtol: float | Tensor, atol: float | Tensor, options: dict[str, Any]) -> Any:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known methods: {', '.join(METHODS)}")
    cls: Callable[..., Any] = Dopri5Solver if method == "dopri5" else FixedGridSolver
    unknown = sorted(set(options) - set(cls.options))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for method {method!r}; accepted: {', '.join(cls.options)}"
        )
    if method == "dopri5":
        return Dopri5Solver(rtol, atol, **options)
    return FixedGridSolver(FIXED_GRID_METHODS[method], **options)


def solve(
    func: VectorField,
    y0: Tensor,
    t: Tensor | Sequence[float],
    rtol: float | Tensor = 1e-7,
    atol: float | Tensor = 1e-9,
    method: str | None = None,
    options: dict[str, Any] | None = None,
) -> Solution:
    """Solve ``dy/dt = func(t, y)``, ``y(t[0]) = y0`` and return the states at all ``t``.

    :param func: the vector field, called as ``func(t, y)`` with a 0-dim tensor ``t``.
    :param y0: initial state, a floating-point tensor of any shape.
    :param t: 1-D strictly increasing or decreasing output times; ``t[0]`` is the start. A single
        time returns ``y0`` (stacked, as torchdiffeq) without evaluating ``func``.
    :param rtol: relative tolerance of the adaptive method (ignored by fixed-step methods): a float,
        or a tensor of per-element tolerances that broadcasts to ``y0``'s shape.
    :param atol: absolute tolerance of the adaptive method, like ``rtol``.
    :param method: ``"euler"``, ``"midpoint"``, ``"rk4"`` (fixed step) or ``"dopri5"`` (default).
    :param options: ``{"step_size": h}`` for fixed-step methods (without it, as in torchdiffeq, they
        take one step per interval between output times, however long); ``max_num_steps`` (an
        integer >= 1) for all methods; for dopri5 ``first_step`` (> 0), ``interpolate`` (False steps
        to each output time) and the step controller's ``safety`` (in (0, 1]), ``ifactor`` (>= 1),
        ``dfactor`` (in (0, 1)) and ``min_step`` (>= 0).

    As in torchdiffeq, ``func`` may have step callbacks, each called as ``callback(t0, y0, dt)``
    with tensors (0-dim ``t0`` and ``dt``, ``y0`` shaped like the state): ``callback_step`` before
    every step (every trial step for dopri5), and for dopri5 ``callback_accept_step`` or
    ``callback_reject_step`` after it; fixed-step methods accept every step and call only
    ``callback_step``. ``t0`` and ``y0`` are the step's start; ``dt`` is its length, positive also
    when ``t`` decreases (``t0`` then decreases from step to step).
    """
    method = method or "dopri5"
    solver = _make_solver(method, rtol, atol, dict(options or {}))
    y0 = check_state(y0)
    t = check_times(t, y0)
    if len(t) == 1:
        return Solution(ts=t, ys=torch.stack([y0]), stats=SolverStats(), method=method)
    if t[1] < t[0]:
        callbacks = StepCallbacks.of(func, time_sign=-1.0)  # on the user's field, not the wrapper
        func, t_solve = reversed_field(func), -t
        solver.time_sign = -1.0
    else:
        callbacks, t_solve = StepCallbacks.of(func), t
    func, f0 = checked_field(func, y0, t_solve[0], t_shown=float(t[0].detach()))
    ys, stats = solver.integrate(func, y0, t_solve, f0, callbacks)
    return Solution(ts=t, ys=ys, stats=stats, method=method)


def odeint(
    func: VectorField,
    y0: Tensor,
    t: Tensor | Sequence[float],
    rtol: float | Tensor = 1e-7,
    atol: float | Tensor = 1e-9,
    method: str | None = None,
    options: dict[str, Any] | None = None,
) -> Tensor:
    """Like :func:`solve` (same arguments), returning only the states, as ``torchdiffeq.odeint``."""
    return solve(func, y0, t, rtol=rtol, atol=atol, method=method, options=options).ys
