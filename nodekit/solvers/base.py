"""What every solver returns (the states at the output times and the cost of getting them), and the
vector field's optional step callbacks that solvers call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

DEFAULT_MAX_NUM_STEPS = 10_000

StepCallback = Callable[[Tensor, Tensor, Tensor], object]
CALLBACK_NAMES: tuple[str, ...] = ("callback_step", "callback_accept_step", "callback_reject_step")


def _in_time_t(callback: StepCallback) -> StepCallback:
    """``callback`` for a solve in s = -t: it is shown ``t0 = -s`` (``dt`` stays positive, as in torchdiffeq)."""

    def reversed_callback(t0: Tensor, y0: Tensor, dt: Tensor) -> object:
        return callback(-t0, y0, dt)

    return reversed_callback


@dataclass(frozen=True)
class StepCallbacks:
    """A vector field's ``callback_step``, ``callback_accept_step`` and ``callback_reject_step``
    (None where it has none), each called as ``callback(t0, y0, dt)`` with tensors."""

    step: StepCallback | None = None
    accept: StepCallback | None = None
    reject: StepCallback | None = None

    @classmethod
    def of(cls, func: object, time_sign: float = 1.0) -> StepCallbacks:
        """The callbacks that ``func`` has, looked up once per solve.

        :param func: the user's vector field.
        :param time_sign: -1 when the solver integrates in s = -t, so that callbacks see t.
        """
        found = [getattr(func, name, None) for name in CALLBACK_NAMES]
        return cls(*(cb if cb is None or time_sign > 0 else _in_time_t(cb) for cb in found))

    @property
    def any(self) -> bool:
        """Whether the field has at least one of the callbacks."""
        return self.step is not None or self.accept is not None or self.reject is not None


@dataclass
class SolverStats:
    """Cost of one solve. ``nfe`` counts every evaluation of the vector field."""

    nfe: int = 0
    accepted_steps: int = 0
    rejected_steps: int = 0

    @property
    def steps(self) -> int:
        return self.accepted_steps + self.rejected_steps


@dataclass
class Solution:
    """States ``ys[i]`` at times ``ts[i]`` (stacked along dim 0), with the solver's statistics."""

    ts: Tensor
    ys: Tensor
    stats: SolverStats
    method: str
