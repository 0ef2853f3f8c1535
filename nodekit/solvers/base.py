"""What every solver returns: the states at the output times and the cost of getting them."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

DEFAULT_MAX_NUM_STEPS = 10_000


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
