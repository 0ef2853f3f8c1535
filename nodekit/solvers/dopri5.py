"""Adaptive Dormand–Prince 5(4) with error control and 4th-order dense output."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import MaxStepsExceededError, StepSizeUnderflowError
from .base import DEFAULT_MAX_NUM_STEPS, SolverStats, StepCallbacks
from .checks import VectorField, check_option, check_tolerances, tolerance_for_state
from .fixed_grid import combine
from .tableaus import DOPRI5, DOPRI5_DENSE


def rms(x: Tensor) -> float:
    """Root mean square of all entries, in one pass over ``x``."""
    return float(torch.linalg.vector_norm(x)) / math.sqrt(max(x.numel(), 1))


def _tolerance_text(tol: float | Tensor) -> str:
    """A tolerance for a message: the float, or the range of per-element tolerances."""
    if isinstance(tol, float):
        return f"{tol:g}"
    return f"{float(tol.min()):g} to {float(tol.max()):g} per element"


@dataclass
class _Step:
    """An accepted step, kept for interpolating outputs that fall inside it."""

    t0: float
    h: float
    y0: Tensor
    y1: Tensor
    ks: list[Tensor]

    def interpolate(self, t: float) -> Tensor:
        """Hairer's continuous extension of DOPRI5 at time ``t`` inside the step."""
        theta = (t - self.t0) / self.h
        k1, k7 = self.ks[0], self.ks[-1]
        ydiff = self.y1 - self.y0
        bspl = self.h * k1 - ydiff
        r4 = ydiff - self.h * k7 - bspl
        r5 = sum(d * self.h * k for d, k in zip(DOPRI5_DENSE, self.ks) if d != 0.0)
        inner = bspl + theta * (r4 + (1 - theta) * r5)
        return self.y0 + theta * (ydiff + (1 - theta) * inner)


class Dopri5Solver:
    """Dormand–Prince 5(4): local error ``err`` per step is kept below
    ``atol + rtol * max(|y_n|, |y_{n+1}|)`` in the root-mean-square norm.

    Outputs between steps are interpolated (``interpolate=True``) or stepped to exactly.
    Steps never pass the last output time, so the field is not evaluated beyond it.
    """

    options = ("first_step", "max_num_steps", "safety", "ifactor", "dfactor", "interpolate", "min_step")
    order = 5

    def __init__(
        self,
        rtol: float | Tensor,
        atol: float | Tensor,
        first_step: float | None = None,
        max_num_steps: int = DEFAULT_MAX_NUM_STEPS,
        safety: float = 0.9,
        ifactor: float = 10.0,
        dfactor: float = 0.2,
        interpolate: bool = True,
        min_step: float = 0.0,
    ) -> None:
        self.rtol, self.atol = check_tolerances(rtol, atol)
        if first_step is not None:
            check_option(
                "first_step", first_step, "a finite number > 0", lambda h: 0 < h < math.inf,
                hint="; it is the length of the first trial step (the direction comes from t), "
                "or leave it out to have it chosen automatically",
            )
        check_option("max_num_steps", max_num_steps, "an integer >= 1", lambda n: n >= 1, integer=True)
        check_option("safety", safety, "in (0, 1]", lambda x: 0 < x <= 1)
        check_option("ifactor", ifactor, ">= 1", lambda x: x >= 1)
        check_option("dfactor", dfactor, "in (0, 1)", lambda x: 0 < x < 1)
        check_option("min_step", min_step, "a finite number >= 0", lambda h: 0 <= h < math.inf)
        self.first_step = first_step
        self.max_num_steps = max_num_steps
        self.safety, self.ifactor, self.dfactor = safety, ifactor, dfactor
        self.interpolate = interpolate
        self.min_step = min_step
        # -1 when ``solve`` integrates in s = -t (decreasing output times): messages show t.
        self.time_sign = 1.0

    def _shown(self, s: float) -> float:
        return self.time_sign * s + 0.0  # + 0.0 turns -0.0 into 0.0

    def integrate(
        self, func: VectorField, y0: Tensor, t: Tensor, f0: Tensor, callbacks: StepCallbacks
    ) -> tuple[Tensor, SolverStats]:
        """Solve forwards in time from ``t[0]`` with ``f0 = func(t[0], y0)`` already evaluated, calling
        ``callbacks.step`` before each trial step and ``callbacks.accept`` or ``callbacks.reject`` after it."""
        if t.requires_grad:
            raise ValueError(
                "dopri5 does not differentiate with respect to the output times t; "
                "pass t.detach(), or use a fixed-step method, whose steps follow t"
            )
        # Per-element tolerances on the state's dtype and device (floats stay floats).
        self.rtol = tolerance_for_state("rtol", self.rtol, y0)
        self.atol = tolerance_for_state("atol", self.atol, y0)
        times = t.tolist()
        stats = SolverStats(nfe=1)
        eps = torch.finfo(t.dtype).eps
        h = self.first_step or self._initial_step(func, times[0], y0, f0, t, stats)
        t_now, y, f = times[0], y0, f0
        ys, last = [y0], None
        report = callbacks.any  # the step's (t0, y0, dt) as tensors only for fields with callbacks
        for target in times[1:]:
            while t_now < target:
                limit = times[-1] if self.interpolate else target
                last = None
                while last is None:
                    if stats.steps >= self.max_num_steps:
                        raise MaxStepsExceededError(
                            f"dopri5 took {self.max_num_steps} steps and reached "
                            f"t={self._shown(t_now):g} of {self._shown(times[-1]):g} "
                            f"(rtol={_tolerance_text(self.rtol)}, atol={_tolerance_text(self.atol)}); the "
                            "problem may be stiff: loosen the tolerances, shorten the time span, or raise "
                            "options['max_num_steps']"
                        )
                    clipped = h >= limit - t_now
                    h_try = limit - t_now if clipped else h
                    if report:
                        step_args = (t.new_tensor(t_now), y, t.new_tensor(h_try))
                        if callbacks.step is not None:
                            callbacks.step(*step_args)
                    y_new, ks, ratio = self._attempt(func, t_now, y, f, h_try, t)
                    stats.nfe += 6
                    h_next = h_try * self._growth(ratio)
                    accepted = ratio <= 1.0
                    done = callbacks.accept if accepted else callbacks.reject
                    if done is not None:
                        done(*step_args)
                    if accepted:
                        stats.accepted_steps += 1
                        last = _Step(t_now, h_try, y, y_new, ks)
                        t_now = limit if clipped else t_now + h_try
                        y, f = y_new, ks[-1]
                        if clipped:
                            # The step was cut short to land on an output time: its error may
                            # support a longer next step than ifactor * h_try, up to the step
                            # proposed before the cut (a tiny last bit must not cripple the next).
                            best = h if ratio == 0.0 else h_try * self.safety * ratio ** (-1 / self.order)
                            h = max(h_next, min(h, best))
                            continue
                    else:
                        stats.rejected_steps += 1
                    h = h_next
                    # Checked after accepted steps too: near a blow-up the controller can keep
                    # accepting ever shorter steps that no longer advance t at all.
                    if h < max(self.min_step, 8 * eps * max(1.0, abs(t_now))):
                        finite = "" if math.isfinite(ratio) else " (the trial step produced NaN/Inf)"
                        raise StepSizeUnderflowError(
                            f"dopri5 step size underflowed to h={h:.3g} at "
                            f"t={self._shown(t_now):g}{finite}: "
                            "the dynamics may be stiff or unstable (e.g. eigenvalues with large "
                            "positive real part, or a solution that blows up in finite time). Try a "
                            "fixed-step method with a small step_size, a shorter time span, looser "
                            "rtol/atol, normalised inputs, or regularising the vector field"
                        )
            ys.append(y if t_now == target else last.interpolate(target))
        return torch.stack(ys), stats

    def _growth(self, ratio: float) -> float:
        if not math.isfinite(ratio):
            return self.dfactor
        if ratio == 0.0:
            return self.ifactor
        return min(self.ifactor, max(self.dfactor, self.safety * ratio ** (-1 / self.order)))

    def _attempt(
        self, func: VectorField, t0: float, y: Tensor, k1: Tensor, h: float, t: Tensor
    ) -> tuple[Tensor, list[Tensor], float]:
        """One trial step: the 5th-order solution, the 7 stages, and the scaled error norm."""
        stage_times = torch.tensor([t0 + c * h for c in DOPRI5.c], dtype=t.dtype, device=t.device)
        ks = [k1]
        for s in range(1, DOPRI5.stages):
            y_stage = combine(y, DOPRI5.a[s], ks, h)
            ks.append(func(stage_times[s], y_stage))
        y_new = y_stage  # the last stage is evaluated at the 5th-order solution (FSAL)
        with torch.no_grad():
            # In place on fresh buffers: the error norm is bookkeeping, not part of the graph.
            err = torch.mul(ks[0], DOPRI5.b_error[0] * h)
            for e, k in zip(DOPRI5.b_error[1:], ks[1:]):
                if e != 0.0:
                    err.add_(k, alpha=e * h)
            scale = torch.maximum(y.abs(), y_new.abs()).mul_(self.rtol).add_(self.atol)
            ratio = rms(err.div_(scale))
        return y_new, ks, ratio

    def _initial_step(
        self, func: VectorField, t0: float, y0: Tensor, f0: Tensor, t: Tensor, stats: SolverStats
    ) -> float:
        """Hairer, Nørsett & Wanner's starting step (Solving ODEs I, II.4), one extra evaluation."""
        with torch.no_grad():
            scale = self.atol + self.rtol * y0.abs()
            d0, d1 = rms(y0 / scale), rms(f0 / scale)
            h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
            f1 = func(torch.tensor(t0 + h0, dtype=t.dtype, device=t.device), y0 + h0 * f0)
            stats.nfe += 1
            d2 = rms((f1 - f0) / scale) / h0
            if max(d1, d2) <= 1e-15:
                h1 = max(1e-6, h0 * 1e-3)
            else:
                h1 = (0.01 / max(d1, d2)) ** (1 / self.order)
        return min(100 * h0, h1, float(t[-1] - t[0]))
