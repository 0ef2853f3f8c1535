"""Fixed-step explicit Runge–Kutta solvers (euler, midpoint, rk4)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import MaxStepsExceededError
from .base import DEFAULT_MAX_NUM_STEPS, SolverStats, StepCallbacks
from .checks import VectorField, check_option, raise_non_finite, steps_for_interval
from .tableaus import ButcherTableau


def combine(y: Tensor, coefs: Sequence[float], ks: Sequence[Tensor], h: float | Tensor) -> Tensor:
    """``y + h * sum(c * k)`` over the non-zero coefficients ``c``.

    With a plain-number ``h`` each term is one fused ``add`` into a single new tensor,
    accumulated in place (safe under autograd: an addition saves none of its inputs). A tensor
    ``h`` (when differentiating with respect to the times) takes the out-of-place path.
    """
    out = y
    for c, k in zip(coefs, ks):
        if c == 0.0:
            continue
        if isinstance(h, Tensor):
            out = out + (c * h) * k
        elif out is y:
            out = torch.add(y, k, alpha=c * h)
        else:
            out.add_(k, alpha=c * h)
    return out


class FixedGridSolver:
    """Explicit Runge–Kutta method with equal steps between consecutive output times.

    Each interval ``[t[i], t[i+1]]`` is split into the fewest equal steps no longer than
    ``step_size`` (one step per interval when ``step_size`` is None), so the solver lands
    exactly on every output time and never interpolates.
    """

    options = ("step_size", "max_num_steps")

    def __init__(
        self,
        tableau: ButcherTableau,
        step_size: float | None = None,
        max_num_steps: int = DEFAULT_MAX_NUM_STEPS,
    ) -> None:
        if step_size is not None:
            check_option("step_size", step_size, "a finite number > 0", lambda h: 0 < h < math.inf)
        check_option("max_num_steps", max_num_steps, "an integer >= 1", lambda n: n >= 1, integer=True)
        self.tableau = tableau
        self.step_size = step_size
        self.max_num_steps = max_num_steps
        self._stage_offsets = torch.tensor(tableau.c, dtype=torch.float64)
        # -1 when ``solve`` integrates in s = -t (decreasing output times): messages show t.
        self.time_sign = 1.0

    def _shown(self, s: float) -> float:
        return self.time_sign * s + 0.0  # + 0.0 turns -0.0 into 0.0

    def integrate(
        self, func: VectorField, y0: Tensor, t: Tensor, f0: Tensor, callbacks: StepCallbacks
    ) -> tuple[Tensor, SolverStats]:
        """Solve from ``t[0]`` with ``f0 = func(t[0], y0)`` already evaluated, calling
        ``callbacks.step`` before each step (every step is accepted)."""
        times = t.tolist()
        counts = [steps_for_interval(b - a, self.step_size) for a, b in zip(times, times[1:])]
        if sum(counts) > self.max_num_steps:
            raise MaxStepsExceededError(
                f"{self.tableau.name} with step_size={self.step_size} needs {sum(counts)} steps over "
                f"[{self._shown(times[0]):g}, {self._shown(times[-1]):g}], more than "
                f"max_num_steps={self.max_num_steps}; "
                "use a larger step_size or raise options['max_num_steps']"
            )
        # Differentiating with respect to t needs the step sizes as tensors; otherwise plain
        # floats let every update be a single fused kernel.
        time_grad = t.requires_grad
        offsets = self._stage_offsets.to(dtype=t.dtype, device=t.device)
        ys, y, k1 = [y0], y0, f0
        for i, n in enumerate(counts):
            h_tensor = (t[i + 1] - t[i]) / n
            h = h_tensor if time_grad else (times[i + 1] - times[i]) / n
            steps = torch.arange(n, dtype=t.dtype, device=t.device)
            stage_times = t[i] + h_tensor * (steps[:, None] + offsets[None, :])
            for j in range(n):
                if callbacks.step is not None:
                    callbacks.step(stage_times[j, 0], y, h_tensor)
                y = self.step(func, stage_times[j], y, h, k1)
                k1 = None
            if not torch.isfinite(y).all():
                raise_non_finite(self._shown(times[i]), self._shown(times[i + 1]))
            ys.append(y)
        n_steps = sum(counts)
        stats = SolverStats(nfe=n_steps * self.tableau.stages, accepted_steps=n_steps)
        return torch.stack(ys), stats

    def step(
        self, func: VectorField, stage_times: Tensor, y: Tensor, h: float | Tensor, k1: Tensor | None
    ) -> Tensor:
        """One Runge–Kutta step of size ``h`` from ``y``; ``k1`` may be given precomputed."""
        tab = self.tableau
        ks = [func(stage_times[0], y) if k1 is None else k1]
        for s in range(1, tab.stages):
            ks.append(func(stage_times[s], combine(y, tab.a[s], ks, h)))
        return combine(y, tab.b, ks, h)
