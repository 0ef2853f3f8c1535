"""nodekit.attacks: perturbations stay in the ball and the pixel range, closed forms, strength, modes, errors."""

import pytest
import torch
import torch.nn.functional as F
from problems import images, stripes
from problems import small_mlp as small_model
from torch import nn
from torch.utils.data import TensorDataset

from nodekit.attacks import FGSM, PGD, SPSA, GaussianNoise, robust_accuracy
from nodekit.models import (
    with_solver,
    yan_odenet,
)
from nodekit.training import TrainConfig, evaluate, fit


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))









ATTACKS = [
    FGSM(0.1), PGD(0.1, steps=5), PGD(0.1, steps=5, restarts=2), PGD(0.5, norm="l2", steps=5),
    SPSA(0.1, steps=3, samples=8), PGD(0.1, steps=3, eot=3), PGD(0.5, norm="l2", steps=3, eot=2),
    SPSA(0.5, norm="l2", steps=3, samples=8),
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
    (lambda: PGD(0.1, eot=0), "eot .*must be an integer >= 1, got 0"),
    (lambda: PGD(0.1, eot=2.0), "eot .*must be an integer >= 1, got 2.0"),
    (lambda: SPSA(0.1, norm="l1"), "unknown norm 'l1'.*'linf'.*'l2'"),
    (lambda: SPSA(0.1, norm="inf"), "unknown norm 'inf'"),
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












