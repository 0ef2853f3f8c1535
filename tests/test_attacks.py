"""nodekit.attacks, the robustness training hooks and Yan et al.'s models."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from nodekit.attacks import FGSM, PGD, SPSA, GaussianNoise, robust_accuracy
from nodekit.models import (
    count_parameters, tisode, with_solver, yan_cnn, yan_odenet,
)
from nodekit.training import TrainConfig, evaluate, fit
from nodekit.training.hooks import AdversarialTraining, GaussianAugmentation
from nodekit.training.regularizers import SteadyStateRegularizer, steady_state_penalty


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))



def images(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 3))


def stripes(n: int, seed: int) -> TensorDataset:
    """Two classes of 8×8 images: bright left half or bright right half, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.35 * torch.rand(n, 1, 8, 8, generator=g)
    x[y == 0, :, :, :4] += 0.4
    x[y == 1, :, :, 4:] += 0.4
    return TensorDataset(x.clamp(0, 1), y)


ATTACKS = [
    FGSM(0.1), PGD(0.1, steps=5), PGD(0.1, steps=5, restarts=2), PGD(0.5, norm="l2", steps=5),
    SPSA(0.1, steps=3, samples=8),
]


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.label + f"-{getattr(a, 'restarts', 1)}")
def test_perturbations_stay_in_the_ball_and_the_pixel_range(attack):
    x, y = images()
    x_adv = attack(small_model(), x, y)
    assert x_adv.shape == x.shape
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    delta = (x_adv - x).flatten(1)
    if getattr(attack, "norm", "linf") == "linf":
        assert delta.abs().max() <= attack.eps + 1e-6
    else:
        assert delta.norm(dim=1).max() <= attack.eps + 1e-5
    assert delta.abs().max() > 0  # it did perturb


def test_gaussian_noise_is_on_the_255_scale_clipped_and_seeded():
    x = torch.full((200, 1, 8, 8), 0.5)
    noisy = GaussianNoise(25.5)(small_model(), x, torch.zeros(200, dtype=torch.long))
    assert (noisy - x).std().item() == pytest.approx(0.1, rel=0.05)
    assert torch.equal(noisy, GaussianNoise(25.5)(small_model(), x, torch.zeros(200, dtype=torch.long)))
    big = GaussianNoise(500)(small_model(), x, torch.zeros(200, dtype=torch.long))
    assert big.min() == 0 and big.max() == 1


def test_fgsm_on_a_linear_model_is_the_closed_form_sign_step():
    torch.manual_seed(0)
    linear = nn.Linear(64, 3)
    model = nn.Sequential(nn.Flatten(), linear)
    x, y = images(8)
    eps = 0.05
    with torch.no_grad():
        p = F.softmax(model(x), dim=1)
        grad = (p - F.one_hot(y, 3).float()) @ linear.weight  # d CE / dx for logits Wx + b
    expected = (x + eps * grad.sign().view_as(x)).clamp(0, 1)
    assert torch.allclose(FGSM(eps)(model, x, y), expected, atol=1e-6)


def test_pgd_is_at_least_as_strong_as_fgsm_on_a_trained_model():
    model = small_model()
    model[-1] = nn.Linear(16, 2)
    train, test = stripes(256, 0), stripes(128, 1)
    fit(model, train, test, TrainConfig(epochs=8, lr=1e-2, batch_size=32), name="stripes", progress=False)
    clean = robust_accuracy(model, test, progress=False)
    assert clean > 0.95
    for eps in (0.1, 0.2):
        fgsm = robust_accuracy(model, test, FGSM(eps), progress=False)
        pgd = robust_accuracy(model, test, PGD(eps, steps=10), progress=False)
        assert pgd <= fgsm <= clean
    assert robust_accuracy(model, test, PGD(0.2, steps=10), progress=False) < clean


@pytest.mark.parametrize("attack", ATTACKS + [GaussianNoise(50)], ids=lambda a: a.label)
@pytest.mark.parametrize("training", [True, False])
def test_attacks_leave_mode_parameters_and_gradients_alone(attack, training):
    model = small_model()
    model.train(training)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = images()
    attack(model, x, y)
    robust_accuracy(model, (x, y), attack, progress=False)
    assert model.training == training
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p, q) and p.grad is None and p.requires_grad


@pytest.mark.parametrize("make, match", [
    (lambda: FGSM(-0.1), "eps must be"),
    (lambda: PGD(-1.0), "eps must be"),
    (lambda: PGD(0.1, norm="l3"), "unknown norm 'l3'.*'linf'.*'l2'"),
    (lambda: PGD(0.1, steps=0), "steps must be"),
    (lambda: PGD(0.1, restarts=0), "restarts must be"),
    (lambda: GaussianNoise(-5), "sigma must be"),
    (lambda: SPSA(0.1, samples=7), "samples must be even"),
    (lambda: FGSM(0.1, clip=(1.0, 0.0)), "clip must be"),
    (lambda: FGSM(float("nan")), "eps must be"),
])
def test_bad_arguments_are_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_robust_accuracy_clean_matches_evaluate_and_transfer_uses_the_source():
    model, other = small_model(0), small_model(1)
    x, y = images(40)
    data = TensorDataset(x, y)
    assert robust_accuracy(model, data, progress=False) == evaluate(model, data)
    # crafted on `other`, the perturbation does not depend on `model`'s gradients
    transfer = robust_accuracy(model, data, FGSM(0.2), source=other, progress=False)
    crafted = FGSM(0.2)(other, x, y)
    with torch.no_grad():
        assert transfer == pytest.approx((model(crafted).argmax(1) == y).float().mean().item())


def test_pgd_through_an_ode_net_uses_its_solver_and_changes_with_it():
    torch.manual_seed(0)
    model = yan_odenet(width=4)
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    a = PGD(0.1, steps=2)(model, x, y)
    assert model.block.last_stats.nfe >= 10  # Euler h=0.1 on [0, 1]
    b = PGD(0.1, steps=2)(with_solver(model, "rk4", 0.5), x, y)
    assert model.block.method == "rk4" and not torch.equal(a, b)


# -- models ------------------------------------------------------------------------------------ #

def test_published_models_have_about_140k_parameters():
    counts = [count_parameters(m) for m in (yan_cnn(), yan_odenet(), tisode())]
    assert all(135_000 <= c <= 145_000 for c in counts), counts
    assert count_parameters(yan_cnn(8, pool=4)) < 5_000


@pytest.mark.parametrize("make", [lambda: yan_cnn(8), lambda: yan_odenet(8), lambda: tisode(8, pool=4)])
def test_models_map_digits_to_logits(make):
    assert make()(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_steady_state_penalty_vanishes_at_a_steady_state_and_reuses_features():
    torch.manual_seed(0)
    model = tisode(4, step_size=0.05)
    x = torch.rand(5, 1, 28, 28)
    model(x)
    from_x = steady_state_penalty(model, x, (1.0, 1.05))
    assert from_x > 0
    assert torch.allclose(steady_state_penalty(model, None, (1.0, 1.05)), from_x, atol=1e-6)
    nn.init.zeros_(model.block.field.norm3.weight)  # the field's last layer outputs 0: f ≡ 0
    nn.init.zeros_(model.block.field.norm3.bias)
    assert steady_state_penalty(model, x) == 0
    with pytest.raises(ValueError, match="window"):
        steady_state_penalty(model, x, (1.0, 0.5))


# -- training hooks ------------------------------------------------------------------------------ #

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


def test_robust_training_hooks():
    model = small_model()
    x, y = images(32)
    g = torch.Generator().manual_seed(0)
    noisy = GaussianAugmentation((50.0, 100.0))(model, x, y, 0, g)
    assert noisy.min() >= 0 and noisy.max() <= 1 and not torch.equal(noisy, x)
    mixed = AdversarialTraining(FGSM(0.1), fraction=0.5)(model, x, y, 0, g)
    changed = (mixed != x).flatten(1).any(1)
    assert changed.sum() == 16 and (mixed - x).abs().max() <= 0.1 + 1e-6
    tis = tisode(4)
    reg = SteadyStateRegularizer(weight=0.01, window=(1.0, 1.05), from_epoch=2)
    xi = torch.rand(2, 1, 28, 28)
    tis(xi)
    assert reg(tis, xi, None, 1) == 0 and reg(tis, xi, None, 2) > 0
    with pytest.raises(ValueError):
        GaussianAugmentation(())
