"""nodekit.training.loop: fit() learns, records solver work, caches finished runs and resumes interrupted ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from problems import blob_classifier, blobs, stripes
from problems import small_mlp as small_model
from torch import nn
from torch.utils.data import TensorDataset

from nodekit.data.toy import concentric_spheres
from nodekit.models import (
    mlp_anode,
    mnist_model,
)
from nodekit.training import TrainConfig, evaluate, fit, sign_prediction


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))


def make_model() -> nn.Module:
    return blob_classifier(seed=0)


ADAM_STEP = torch.optim.Adam.step


def count_optimizer_steps(monkeypatch, interrupt_after: int | None = None) -> dict[str, int]:
    """Count Adam steps (a cached run takes none); raise KeyboardInterrupt after ``interrupt_after``."""
    calls = {"n": 0}

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if interrupt_after is not None and calls["n"] > interrupt_after:
            raise KeyboardInterrupt
        return ADAM_STEP(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    return calls


CONFIG = TrainConfig(epochs=4, lr=1e-2, batch_size=16)



def test_fit_learns_and_evaluate_restores_mode():
    model = make_model()
    history = fit(model, blobs(128, 0), blobs(64, 1), CONFIG, name="blobs", progress=False)
    assert history.epochs == 4 and history.test_accuracy[-1] > 0.95
    model.train()
    evaluate(model, blobs(64, 1))
    assert model.training


def test_finished_run_is_loaded_not_retrained(monkeypatch):
    first = make_model()
    fit(first, blobs(128, 0), blobs(64, 1), CONFIG, name="blobs", progress=False)
    steps = count_optimizer_steps(monkeypatch)
    second = make_model()
    history = fit(second, blobs(128, 0), blobs(64, 1), CONFIG, name="blobs", progress=False)
    assert steps["n"] == 0, "a cached run was retrained"
    assert history.epochs == 4
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)


def test_interrupted_run_resumes_to_the_uninterrupted_result(monkeypatch, tmp_path):
    reference = make_model()
    ref_history = fit(reference, blobs(128, 0), blobs(64, 1), CONFIG, name="ref", progress=False, use_cache=False)

    count_optimizer_steps(monkeypatch, interrupt_after=2 * 8 + 3)  # 8 batches per epoch: stop in epoch 3
    with pytest.raises(KeyboardInterrupt):
        fit(make_model(), blobs(128, 0), blobs(64, 1), CONFIG, name="resume", progress=False)
    steps = count_optimizer_steps(monkeypatch)
    resumed = make_model()
    history = fit(resumed, blobs(128, 0), blobs(64, 1), CONFIG, name="resume", progress=False)
    assert steps["n"] == 2 * 8, "the resumed run trains only the two epochs not yet checkpointed"
    assert history.epochs == 4
    assert history.train_loss == pytest.approx(ref_history.train_loss, rel=1e-6)
    for a, b in zip(reference.parameters(), resumed.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_fit_records_backward_nfe_per_batch_and_epoch(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(24, 1, 28, 28), torch.randint(0, 10, (24,)))
    for name in ("ODE-Net", "ResNet"):
        model = mnist_model(name, 4, tol=1e-2)
        history = fit(model, data, data, TrainConfig(epochs=2, batch_size=8), name=f"bnfe-{name}", progress=False)
        assert len(history.backward_nfe) == 2 and len(history.batch_backward_nfe) == 6
        if name == "ODE-Net":
            assert all(n > 0 for n in history.batch_backward_nfe)
            assert history.backward_nfe[0] == pytest.approx(sum(history.batch_backward_nfe[:3]) / 3)
        else:
            assert history.backward_nfe == [0.0, 0.0]
    # The cached run reloads with its backward NFE (same initial weights: the cache key includes them).
    def ode_net():
        torch.manual_seed(1)
        return mnist_model("ODE-Net", 4, tol=1e-2)

    first = fit(ode_net(), data, data, TrainConfig(epochs=2, batch_size=8), name="bnfe-reload", progress=False)
    again = fit(ode_net(), data, data, TrainConfig(epochs=2, batch_size=8), name="bnfe-reload", progress=False)
    assert again.batch_backward_nfe == first.batch_backward_nfe and again.seconds == first.seconds


def test_fit_regresses_g1_with_sign_accuracy_and_per_batch_records(monkeypatch):
    train = concentric_spheres(1, 0.5, 1.0, 1.5, 512, seed=0)
    test = concentric_spheres(1, 0.5, 1.0, 1.5, 256, seed=1)
    torch.manual_seed(0)
    anode = mlp_anode(1, augment_dim=1)
    config = TrainConfig(epochs=4, lr=1e-2, batch_size=64)
    history = fit(anode, train, test, config, name="g1", loss_fn=F.smooth_l1_loss, predict=sign_prediction, progress=False)
    assert history.test_accuracy[-1] >= 0.95
    assert evaluate(anode, test, predict=sign_prediction) == history.test_accuracy[-1]
    assert len(history.batch_loss) == len(history.batch_forward_nfe) == 4 * 8
    assert history.batch_forward_nfe[0] > 0
    assert sum(history.batch_forward_nfe[:8]) / 8 == pytest.approx(history.forward_nfe[0])
    torch.manual_seed(0)  # the same initial weights: the cache key includes them
    steps = count_optimizer_steps(monkeypatch)
    reloaded = fit(mlp_anode(1, augment_dim=1), train, test, config, name="g1",
                   loss_fn=F.smooth_l1_loss, predict=sign_prediction, progress=False)
    assert steps["n"] == 0 and reloaded.batch_loss == history.batch_loss


def test_sign_prediction():
    assert torch.equal(sign_prediction(torch.tensor([[-0.2], [0.0], [3.0]])), torch.tensor([[-1.0], [1.0], [1.0]]))


def test_fit_hooks_transform_batches_and_add_the_regularizer():
    seen = []

    def transform(model, x, y, epoch, generator):
        seen.append(epoch)
        return x + 0.01 * torch.randn(x.shape, generator=generator)

    config = TrainConfig(epochs=2, lr=1e-2, batch_size=64)
    base = fit(small_model(), stripes(128, 0), stripes(64, 1), config, name="plain", progress=False)
    shifted = fit(small_model(), stripes(128, 0), stripes(64, 1), config, name="plus-one", progress=False,
                  regularizer=lambda model, x, y, epoch: torch.tensor(1.0))
    assert shifted.batch_loss[0] == pytest.approx(base.batch_loss[0] + 1.0)
    runs = [fit(small_model(), stripes(128, 0), stripes(64, 1), config, name=f"t{i}", progress=False,
                batch_transform=transform) for i in range(2)]
    assert seen == [0, 0, 1, 1] * 2
    assert runs[0].batch_loss == runs[1].batch_loss  # the generator is seeded by (seed, epoch)
    assert runs[0].batch_loss != base.batch_loss
