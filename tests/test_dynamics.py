"""nodekit.dynamics: exact linear trajectories, snippets, learning z' = Az, eigenvalues, the
cubic field's switching layers, caching and failures of fit_dynamics."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

import nodekit
from nodekit.dynamics import (
    LINEAR_SYSTEMS, CubicMLPField, DynamicsConfig, LinearField, Trajectories, fit_dynamics, jacobian_eigenvalues,
    jacobians, linear_trajectories,
)
from nodekit.models import MLPField


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


def test_a_linear_layer_learns_a_stable_focus_and_is_cached(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))
    torch.manual_seed(0)
    data = linear_trajectories(LINEAR_SYSTEMS["stable focus"], torch.rand(8, 2) * 4 - 2, torch.linspace(0, 3, 31))
    config = DynamicsConfig(iterations=150, lr=2e-2, batch_size=16)
    torch.manual_seed(1)
    field = LinearField()
    history = fit_dynamics(field, data, config, name="focus", progress=False)
    assert len(history.loss) == 150 and history.loss[-1] < 0.01
    assert min(history.backward_nfe) > 0 and min(history.forward_nfe) > 0
    true = torch.linalg.eigvals(torch.tensor(LINEAR_SYSTEMS["stable focus"]))
    learned = jacobian_eigenvalues(field, torch.zeros(2))
    assert torch.allclose(learned.real.sort().values, true.real.sort().values, atol=0.02)
    assert torch.allclose(learned.imag.sort().values, true.imag.sort().values, atol=0.02)
    torch.manual_seed(1)  # the cache key includes the initial weights
    again = LinearField()
    cached = fit_dynamics(again, data, config, name="focus", progress=False)
    assert cached.loss == history.loss and torch.equal(again.matrix, field.matrix)


def test_normalised_snippets_train_on_an_exploding_system() -> None:
    data = linear_trajectories(LINEAR_SYSTEMS["unstable focus"], torch.tensor([[2.0, 0.0]]), torch.linspace(0, 20, 400))
    field = LinearField()
    history = fit_dynamics(field, data, DynamicsConfig(iterations=200, batch_size=10, normalise=True),
                           name="unstable", use_cache=False, progress=False)
    assert history.loss[-1] < 0.01


def test_solver_failures_name_the_iteration() -> None:
    class Exploding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(1.0))

        def forward(self, t: Tensor, z: Tensor) -> Tensor:
            return self.scale * z**2  # blows up in finite time from z = 1 at t = 1

    data = Trajectories(t=torch.linspace(0, 2, 5), z=torch.ones(5, 1, 1))
    with pytest.raises(ValueError, match="names the cache file"):
        fit_dynamics(Exploding(), data, DynamicsConfig(iterations=1), name="a/b", progress=False)
    with pytest.raises(nodekit.SolverError, match="training 'boom' stopped at iteration 0"):
        fit_dynamics(Exploding(), data, DynamicsConfig(iterations=3, batch_size=2, snippet_length=5),
                     name="boom", use_cache=False, progress=False)


def test_jacobians_and_eigenvalues() -> None:
    torch.manual_seed(0)
    field = LinearField()
    z = torch.randn(4, 2)
    assert torch.allclose(jacobians(field, z), field.matrix.expand(4, 2, 2))
    assert jacobian_eigenvalues(field, z).shape == (4, 2)
    mlp = MLPField(2)
    jac = jacobians(mlp, z)
    numeric = torch.autograd.functional.jacobian(lambda x: mlp(torch.zeros(()), x[None])[0], z[1])
    assert torch.allclose(jac[1], numeric, atol=1e-6)


def test_cubic_field_layers_steepen_like_the_square_of_the_radius() -> None:
    torch.manual_seed(0)
    field = CubicMLPField()
    (steep_10, width_10), (steep_100, width_100) = field.steepest_layer(10.0), field.steepest_layer(100.0)
    assert 50 < steep_100 / steep_10 < 200  # ~ (100 / 10)^2
    assert 50 < width_10 / width_100 < 200
    # The located layer really is where the field is steep: compare with random points on the circle.
    angles = torch.rand(1000) * 2 * math.pi
    ring = 100.0 * torch.stack([angles.cos(), angles.sin()], dim=-1)
    assert jacobian_eigenvalues(field, ring).abs().max() < steep_100
