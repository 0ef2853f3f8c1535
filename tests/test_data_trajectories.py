"""nodekit.data.trajectories: exact linear trajectories and their snippets."""

from __future__ import annotations

import pytest
import torch

from nodekit.data.trajectories import LINEAR_SYSTEMS, Trajectories, linear_trajectories


def test_linear_trajectories_are_exact_solutions() -> None:
    z0 = torch.tensor([[1.0, 0.0], [0.5, -1.0]], dtype=torch.float64)
    t = torch.linspace(0, 3, 7, dtype=torch.float64)
    data = linear_trajectories(LINEAR_SYSTEMS["centre"], z0, t)
    assert data.z.shape == (7, 2, 2)
    expected = torch.stack([torch.cos(t), torch.sin(t)], dim=-1)  # rotation of (1, 0)
    assert torch.allclose(data.z[:, 0], expected, atol=1e-12)
    noisy = linear_trajectories(LINEAR_SYSTEMS["centre"], z0, t, noise=0.1, seed=3)
    assert 0.03 < (noisy.z - data.z).std() < 0.3
    assert torch.equal(noisy.z, linear_trajectories(LINEAR_SYSTEMS["centre"], z0, t, noise=0.1, seed=3).z)


def test_snippets_are_consecutive_observations() -> None:
    t = torch.linspace(0, 1, 11)
    z = torch.arange(11 * 3 * 2, dtype=torch.float32).reshape(11, 3, 2)
    data = Trajectories(t=t, z=z)
    times, start, observed = data.snippets(5, 4, torch.Generator().manual_seed(0))
    assert torch.allclose(times, t[:4])
    assert start.shape == (5, 2) and observed.shape == (4, 5, 2)
    assert torch.equal(observed[0], start)
    assert torch.all(observed[1:, :, 0] - observed[:-1, :, 0] == 6)  # one time step = 3 trajectories x 2
    with pytest.raises(ValueError, match="at least that many times"):
        data.snippets(5, 12, torch.Generator())

