"""nodekit.training.sodef: the three phases on a tiny problem, what each one trains and freezes."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from nodekit.fields import SineField
from nodekit.models.sodef import regular_simplex, sodef_encoder
from nodekit.training import TrainConfig
from nodekit.training.sodef import (
    SODEFConfig,
    flow_features,
    train_ode_head,
    train_sodef,
)


def tiny_digits(n: int = 64) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.2
    for c in range(3):  # one bright band per class
        x[y == c, :, 8 * c : 8 * c + 6] += 0.8
    return TensorDataset(x.clamp(0, 1), y)


def config() -> SODEFConfig:
    return SODEFConfig(phase1=TrainConfig(epochs=2, lr=3e-3, batch_size=32), phase2=TrainConfig(epochs=3, lr=1e-2, batch_size=32),
                       phase3=TrainConfig(epochs=2, lr=1e-2, batch_size=32), t1=1.0, tol=1e-3)


def test_three_phases_freeze_what_they_should_and_lower_the_regularizer(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))
    data = tiny_digits()
    torch.manual_seed(0)
    m = train_sodef(sodef_encoder(width=8, features=8), data, data, config(), features=8, classes=3, progress=False)
    assert not any(p.requires_grad for p in m.sodef.encoder.parameters())
    assert not any(p.requires_grad for p in m.sodef.block.field.parameters())
    assert torch.equal(m.backbone[1].weight, regular_simplex(3, 8))  # phase 1's head stayed fixed
    assert not torch.equal(m.initial_field.linear.weight, m.sodef.block.field.linear.weight)  # phase 2 trained f
    phase2 = m.history["phase 2"].train_loss
    assert phase2[-1] < phase2[0]
    # phase 3's head was trained on the flowed features: its accuracy on them is what fit recorded
    flowed = flow_features(m.sodef.block, m.test_features)
    with torch.no_grad():
        acc = (m.sodef.decoder(flowed.tensors[0]).argmax(1) == flowed.tensors[1]).double().mean().item()
    assert abs(acc - m.history["phase 3"].test_accuracy[-1]) < 1e-9


def test_plain_ode_head_trains_a_copy_of_the_field(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))
    data = tiny_digits()
    torch.manual_seed(0)
    m = train_sodef(sodef_encoder(width=8, features=8), data, data, config(), features=8, classes=3, progress=False)
    before = m.initial_field.linear.weight.clone()
    plain, history = train_ode_head(m.sodef.encoder, m.initial_field, m.train_features, m.test_features,
                                    TrainConfig(epochs=2, lr=1e-2, batch_size=32), t1=1.0, tol=1e-3, classes=3,
                                    progress=False)
    assert torch.equal(m.initial_field.linear.weight, before)
    assert not torch.equal(plain.block.field.linear.weight, before)
    assert history.epochs == 2 and plain(data.tensors[0][:4]).shape == (4, 3)


def test_the_new_heads_do_not_depend_on_the_global_rng_state(tmp_path, monkeypatch):
    """Phases loaded from the cache draw nothing from torch's global generator, phases trained here
    do: the head built after them must come out the same either way."""
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))
    torch.manual_seed(0)
    encoder, field = sodef_encoder(4), SineField(64)
    features = TensorDataset(torch.randn(8, 64), torch.randint(0, 10, (8,)))
    heads = []
    for state in (1, 2):
        torch.manual_seed(state)  # a different global state before the call
        model, _ = train_ode_head(encoder, field, features, features, TrainConfig(epochs=0), progress=False)
        heads.append(model.decoder.weight.detach().clone())
    assert torch.equal(heads[0], heads[1])
