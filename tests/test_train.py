"""fit(): learns, caches finished runs, and resumes interrupted ones to the same result."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nodekit.train import TrainConfig, dataset_fingerprint, evaluate, fit, run_key


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))


def blobs(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) + 3.0 * (2 * y[:, None] - 1)
    return TensorDataset(x, y)


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))


CONFIG = TrainConfig(epochs=4, lr=1e-2, batch_size=16)


def test_fit_learns_and_evaluate_restores_mode():
    model = make_model()
    history = fit(model, blobs(128, 0), blobs(64, 1), CONFIG, name="blobs", progress=False)
    assert history.epochs == 4 and history.test_accuracy[-1] > 0.95
    model.train()
    evaluate(model, blobs(64, 1))
    assert model.training


def test_finished_run_is_loaded_not_retrained():
    first = make_model()
    fit(first, blobs(128, 0), blobs(64, 1), CONFIG, name="blobs", progress=False)

    def must_not_train(logits, y):
        raise AssertionError("a cached run was retrained")

    second = make_model()
    history = fit(second, blobs(128, 0), blobs(64, 1), CONFIG, name="blobs", progress=False, loss_fn=must_not_train)
    assert history.epochs == 4
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)


def test_interrupted_run_resumes_to_the_uninterrupted_result(monkeypatch, tmp_path):
    reference = make_model()
    ref_history = fit(reference, blobs(128, 0), blobs(64, 1), CONFIG, name="ref", progress=False, use_cache=False)

    calls = {"n": 0}

    def interrupt_in_epoch_three(logits, y):
        calls["n"] += 1
        if calls["n"] > 2 * 8 + 3:  # 8 batches per epoch; stop during the third epoch
            raise KeyboardInterrupt
        return nn.functional.cross_entropy(logits, y)

    with pytest.raises(KeyboardInterrupt):
        fit(make_model(), blobs(128, 0), blobs(64, 1), CONFIG, name="resume", progress=False, loss_fn=interrupt_in_epoch_three)
    resumed = make_model()
    history = fit(resumed, blobs(128, 0), blobs(64, 1), CONFIG, name="resume", progress=False)
    assert history.epochs == 4
    assert history.train_loss == pytest.approx(ref_history.train_loss, rel=1e-6)
    for a, b in zip(reference.parameters(), resumed.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_run_key_depends_on_config_model_initial_weights_and_data():
    def key(model=None, config=CONFIG, train=blobs(32, 0), name="m"):
        return run_key(name, model if model is not None else make_model(), config,
                       train=dataset_fingerprint(train), test=dataset_fingerprint(blobs(8, 1)))

    base = key()
    assert base == key()
    assert base != key(name="other")
    assert base != key(config=TrainConfig(epochs=5))
    assert base != key(model=nn.Linear(2, 2))
    assert base != key(model=make_model().double())
    assert base != key(train=blobs(32, 2))
    torch.manual_seed(1)
    reseeded = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    assert base != key(model=reseeded), "a different initialisation must not load another run's cache"
