"""nodekit.training.cache: the run key covers everything that determines a trained model."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from problems import blob_classifier, blobs
from torch import nn
from torch.utils.data import TensorDataset

from nodekit.fields import ConvField
from nodekit.models import ODEBlock
from nodekit.training import TrainConfig, fit
from nodekit.training.cache import (
    code_fingerprint,
    dataset_fingerprint,
    describe,
    run_key,
)
from nodekit.training.hooks import GaussianAugmentation
from nodekit.training.regularizers import SteadyStateRegularizer

CONFIG = TrainConfig(epochs=2, lr=1e-2, batch_size=16)


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))


def key(model=None, config=CONFIG, train=None, name="m", task=None, code="c"):
    train = train if train is not None else blobs(32, 0)
    task = task if task is not None else {"train": dataset_fingerprint(train)}
    return run_key(name, model if model is not None else blob_classifier(), config, task, code)


def test_run_key_depends_on_name_config_architecture_dtype_and_initial_weights():
    base = key()
    assert base == key()
    assert base != key(name="other")
    assert base != key(config=TrainConfig(epochs=5))
    assert base != key(model=nn.Linear(2, 2))
    assert base != key(model=blob_classifier().double())
    assert base != key(model=blob_classifier(seed=1)), "a different initialisation must not load another run's cache"
    assert base != key(train=blobs(32, 2))
    assert base != key(code="other code")


def test_data_fingerprint_sees_every_example_not_only_the_ends():
    data = blobs(32, 0)
    x, y = (t.clone() for t in data.tensors)
    x[16, 0] += 1e-3  # same length, same first and last example
    assert dataset_fingerprint(TensorDataset(x, y)) != dataset_fingerprint(data)
    y2 = y.clone()
    y2[5] = 1 - y2[5]  # a flipped label
    assert dataset_fingerprint(TensorDataset(data.tensors[0], y2)) != dataset_fingerprint(data)
    subset = torch.utils.data.Subset(data, [3, 4, 5])
    assert dataset_fingerprint(subset) != dataset_fingerprint(torch.utils.data.Subset(data, [3, 4, 6]))


def test_hooks_loss_and_prediction_are_described_by_their_settings():
    assert describe(GaussianAugmentation((50.0,))) != describe(GaussianAugmentation((75.0,)))
    assert describe(SteadyStateRegularizer(weight=0.01)) != describe(SteadyStateRegularizer(weight=0.02))
    assert describe(F.cross_entropy) != describe(F.mse_loss)

    def scaled(k):
        return lambda logits, y: k * F.cross_entropy(logits, y)

    assert describe(scaled(1.0)) != describe(scaled(2.0)), "closure values are part of a function's identity"

    class Opaque:
        def __call__(self, model, x, y, epoch, generator):
            return x

    with pytest.raises(TypeError, match="make it a dataclass or give it a __repr__"):
        describe(Opaque())


def test_fit_with_the_same_name_but_other_hooks_trains_anew(monkeypatch):
    calls = {"n": 0}
    real = torch.optim.Adam.step

    def counting_step(self, *args, **kwargs):
        calls["n"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", counting_step)
    fit(blob_classifier(), blobs(64, 0), blobs(16, 1), CONFIG, name="run", progress=False)
    trained = calls["n"]
    fit(blob_classifier(), blobs(64, 0), blobs(16, 1), CONFIG, name="run", progress=False)
    assert calls["n"] == trained, "the same run is loaded from the cache"
    for hooks in (dict(batch_transform=GaussianAugmentation((50.0,), clip=(-10.0, 10.0))),
                  dict(regularizer=lambda model, x, y, epoch: 0.0 * x.sum()),
                  dict(predict=lambda out: out.argmin(dim=1)),
                  dict(loss_fn=lambda out, y: 2 * F.cross_entropy(out, y))):
        before = calls["n"]
        fit(blob_classifier(), blobs(64, 0), blobs(16, 1), CONFIG, name="run", progress=False, **hooks)
        assert calls["n"] > before, f"a run with other hooks ({sorted(hooks)}) must not load the plain run"


def test_code_fingerprint_follows_the_source_of_the_modules_a_run_uses(tmp_path, monkeypatch):
    plain = blob_classifier()
    ode = nn.Sequential(ODEBlock(ConvField(4)))
    assert code_fingerprint([plain]) == code_fingerprint([blob_classifier(seed=3)])
    # A model defined outside nodekit (a notebook, a script): its class's source is part of the key.
    module = tmp_path / "my_fields.py"
    module.write_text(textwrap.dedent("""
        from torch import nn
        class Field(nn.Module):
            def forward(self, t, z):
                return -z
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_fields

    before = code_fingerprint([my_fields.Field()])
    module.write_text(module.read_text().replace("-z", "-2 * z"))
    sys.modules.pop("my_fields")
    changed = importlib.import_module("my_fields")
    assert code_fingerprint([changed.Field()]) != before
    # nodekit modules: those of the model's layers count, the solvers always, the others not.
    from nodekit.training import cache

    before = {"plain": code_fingerprint([plain]), "ode": code_fingerprint([ode])}
    real = cache._source_of

    def edited(*names):
        monkeypatch.setattr(cache, "_source_of", lambda name: real(name) + (b"# edit" if name in names else b""))
        return {"plain": code_fingerprint([plain]), "ode": code_fingerprint([ode])}

    assert edited("nodekit.fields") == {"plain": before["plain"], "ode": edited("nodekit.fields")["ode"]}
    assert edited("nodekit.fields")["ode"] != before["ode"]
    assert all(edited("nodekit.solvers.fixed_grid")[k] != before[k] for k in before), "every run depends on the solvers"
    assert edited("nodekit.attacks") == before, "a module the run does not use must not retrain it"


def test_two_writers_of_one_checkpoint_do_not_collide(tmp_path):
    # chapters 8 and 10 train the same SODEF runs; in a parallel build both save the same checkpoint
    import threading

    from nodekit.training.cache import load_checkpoint, save_checkpoint

    path, errors = tmp_path / "run" / "checkpoint.pt", []

    def write(value):
        try:
            for _ in range(30):
                save_checkpoint(path, {"w": torch.full((20000,), float(value))})
        except Exception as error:  # noqa: BLE001 - any failure of a writer fails the test
            errors.append(error)

    threads = [threading.Thread(target=write, args=(v,)) for v in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert load_checkpoint(path)["w"].unique().numel() == 1
    assert not list(path.parent.glob("*.tmp"))
