"""Observed trajectories of dynamical systems: the linear systems ``z' = A z`` of Lopatin's
experiments, their exact solutions, and random snippets of them to train on."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["LINEAR_SYSTEMS", "Trajectories", "linear_trajectories"]

LINEAR_SYSTEMS: dict[str, list[list[float]]] = {
    "stable focus": [[-1.0, -1.0], [1.0, -1.0]],
    "stable node": [[-1.0, 0.0], [0.0, -2.0]],
    "centre": [[0.0, -1.0], [1.0, 0.0]],
    "unstable focus": [[1.0, -1.0], [1.0, 1.0]],
}
"""The matrices ``A`` of Lopatin's experiments (eigenvalues -1±i, -1 and -2, ±i) and an unstable one (1±i)."""


@dataclass
class Trajectories:
    """Observations ``z[i, j]`` of trajectory ``j`` at time ``t[i]``."""

    t: Tensor
    z: Tensor

    def snippets(self, batch_size: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``batch_size`` random runs of ``length`` consecutive observations.

        Returns the snippet times (starting at 0), the start states ``(batch, dim)`` and the
        observations ``(length, batch, dim)``, the first of which are the start states.
        """
        n_times, n_traj = self.z.shape[:2]
        if length > n_times:
            raise ValueError(f"snippets of {length} observations need at least that many times, got {n_times}")
        start = torch.randint(0, n_times - length + 1, (batch_size,), generator=generator)
        which = torch.randint(0, n_traj, (batch_size,), generator=generator)
        offsets = torch.arange(length)
        observed = self.z[start[None, :] + offsets[:, None], which[None, :]]
        return self.t[:length] - self.t[0], observed[0], observed


def linear_trajectories(
    a: Tensor | list[list[float]], z0: Tensor, t: Tensor, noise: float = 0.0, seed: int = 0
) -> Trajectories:
    """Exact solutions ``z(t) = exp(A t) z0`` of ``z' = A z`` (no solver error), plus Gaussian
    observation noise of standard deviation ``noise``."""
    a = torch.as_tensor(a, dtype=z0.dtype)
    flows = torch.linalg.matrix_exp(a * t[:, None, None])  # (T, d, d)
    z = torch.einsum("tij,nj->tni", flows, z0)
    if noise:
        z = z + noise * torch.randn(z.shape, generator=torch.Generator().manual_seed(seed), dtype=z.dtype)
    return Trajectories(t=t, z=z)
