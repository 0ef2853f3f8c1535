"""nodekit.training.tasks: CNF likelihood training and learning dynamics from trajectory snippets,
both on the one training engine (cached, resumable)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import nodekit
from nodekit.data.densities import toy_density
from nodekit.data.trajectories import LINEAR_SYSTEMS, Trajectories, linear_trajectories
from nodekit.fields import LinearField, MLPField
from nodekit.measure.stability import jacobian_eigenvalues
from nodekit.models.cnf import CNF
from nodekit.training import DensityTask, SnippetTask, TrainConfig, train_model


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))


def fresh_flow() -> CNF:
    torch.manual_seed(0)
    return CNF(MLPField(2, hidden=(8,), time="every layer"), dim=2, method="rk4", options={"step_size": 0.25})


def must_not_train(*args, **kwargs):
    raise AssertionError("a cached run was retrained")


def test_density_training_is_cached_and_resumes(monkeypatch):
    config = TrainConfig(epochs=2, batch_size=100)
    task = DensityTask(toy_density("moons"), steps_per_epoch=3)
    straight = fresh_flow()
    history = train_model(straight, task, config, name="straight", progress=False)
    assert history.epochs == 2 and history.batch_forward_nfe == [8] * 6

    # Same run again: loaded from the cache, not retrained (a retrain would call the density).
    again = fresh_flow()
    cached_task = DensityTask(toy_density("moons"), steps_per_epoch=3)
    monkeypatch.setattr(cached_task.density, "sample", must_not_train)
    assert train_model(again, cached_task, config, name="straight", progress=False).batch_loss == history.batch_loss
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), again.state_dict().values()))

    # Interrupted in step 5: the rerun resumes from the checkpoint after epoch 1 (step 3).
    density = toy_density("moons")
    calls = []

    def interrupted(n, generator=None, dtype=torch.float32):
        calls.append(n)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return type(density).sample(density, n, generator, dtype)

    monkeypatch.setattr(density, "sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_model(fresh_flow(), DensityTask(density, steps_per_epoch=3), config, name="interrupted", progress=False)
    calls.clear()
    resumed = train_model(fresh_flow(), DensityTask(density, steps_per_epoch=3), config, name="interrupted", progress=False)
    assert len(calls) == 3 and resumed.batch_loss == history.batch_loss


def test_a_linear_layer_learns_a_stable_focus_and_is_cached(monkeypatch) -> None:
    torch.manual_seed(0)
    data = linear_trajectories(LINEAR_SYSTEMS["stable focus"], torch.rand(8, 2) * 4 - 2, torch.linspace(0, 3, 31))
    config = TrainConfig(epochs=1, lr=2e-2, batch_size=16)
    task = SnippetTask(data, steps_per_epoch=150)
    torch.manual_seed(1)
    field = LinearField()
    history = train_model(field, task, config, name="focus", progress=False)
    assert len(history.batch_loss) == 150 and history.batch_loss[-1] < 0.01
    assert min(history.batch_backward_nfe) > 0 and min(history.batch_forward_nfe) > 0
    true = torch.linalg.eigvals(torch.tensor(LINEAR_SYSTEMS["stable focus"]))
    learned = jacobian_eigenvalues(field, torch.zeros(2))
    assert torch.allclose(learned.real.sort().values, true.real.sort().values, atol=0.02)
    assert torch.allclose(learned.imag.sort().values, true.imag.sort().values, atol=0.02)
    torch.manual_seed(1)  # the cache key includes the initial weights
    again = LinearField()
    monkeypatch.setattr(data, "snippets", must_not_train)  # a retrain would draw snippets
    cached = train_model(again, task, config, name="focus", progress=False)
    assert cached.batch_loss == history.batch_loss and torch.equal(again.matrix, field.matrix)


def test_normalised_snippets_train_on_an_exploding_system() -> None:
    data = linear_trajectories(LINEAR_SYSTEMS["unstable focus"], torch.tensor([[2.0, 0.0]]), torch.linspace(0, 20, 400))
    history = train_model(LinearField(), SnippetTask(data, normalise=True, steps_per_epoch=200),
                          TrainConfig(epochs=1, lr=1e-2, batch_size=10), name="unstable", use_cache=False, progress=False)
    assert history.batch_loss[-1] < 0.01


def test_snippet_training_leaves_the_global_rng_alone() -> None:
    """Snippets come from the task's own generator: training neither reseeds nor draws from torch's global RNG."""
    data = linear_trajectories(LINEAR_SYSTEMS["stable node"], torch.ones(2, 2), torch.linspace(0, 1, 11))
    task = SnippetTask(data, snippet_length=3, steps_per_epoch=2)
    torch.manual_seed(5)
    LinearField()
    expected = torch.rand(3)
    torch.manual_seed(5)
    field = LinearField()
    train_model(field, task, TrainConfig(epochs=1, batch_size=2, seed=0), name="rng", use_cache=False, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_solver_failures_name_the_epoch_and_batch() -> None:
    class Exploding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(1.0))

        def forward(self, t: Tensor, z: Tensor) -> Tensor:
            return self.scale * z**2  # blows up in finite time from z = 1 at t = 1

    data = Trajectories(t=torch.linspace(0, 2, 5), z=torch.ones(5, 1, 1))
    task = SnippetTask(data, snippet_length=5, steps_per_epoch=3)
    with pytest.raises(ValueError, match="names the cache folder"):
        train_model(Exploding(), task, TrainConfig(epochs=1), name="a/b", progress=False)
    with pytest.raises(nodekit.SolverError, match="training 'boom' stopped at epoch 0, batch 0"):
        train_model(Exploding(), task, TrainConfig(epochs=1, batch_size=2), name="boom", use_cache=False, progress=False)


def test_bad_task_settings_are_clear_errors() -> None:
    data = Trajectories(t=torch.linspace(0, 1, 3), z=torch.ones(3, 1, 1))
    with pytest.raises(ValueError, match="steps_per_epoch must be an integer >= 1"):
        SnippetTask(data, steps_per_epoch=0)
    with pytest.raises(ValueError, match="steps_per_epoch must be an integer >= 1"):
        DensityTask(toy_density("moons"), steps_per_epoch=1.5)
