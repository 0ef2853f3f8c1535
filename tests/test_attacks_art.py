"""nodekit.attacks against the adversarial-robustness-toolbox (ART) as an independent implementation:
our PGD agrees with ART's PGD and APGD, the gradient-free Square attack beats FGSM, and the ART-backed
attacks keep the contract of every attack (ball, range, mode, parameters, seeds)."""

import random
import sys

import numpy as np
import pytest
import torch
from art.attacks.evasion import ProjectedGradientDescent
from problems import accuracy, digits, digits_cnn, images, small_mlp
from torch import nn

from nodekit.attacks import APGD, FGSM, PGD, Square, art_classifier, robust_accuracy

AGREE = 0.03  # "within a few points": 6 of the 200 test digits


def art_pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str, steps: int) -> torch.Tensor:
    """ART's own PGD with our PGD's step (2.5 ε / steps) and no random start."""
    attack = ProjectedGradientDescent(
        art_classifier(model, x, (0.0, 1.0)), norm=np.inf if norm == "linf" else 2, eps=eps,
        eps_step=2.5 * eps / steps, max_iter=steps, num_random_init=0, batch_size=len(x), verbose=False)
    return torch.from_numpy(attack.generate(x.numpy(), y.numpy()))


@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("l2", 0.5)])
def test_our_pgd_agrees_with_arts_pgd_and_apgd(norm, eps):
    """From the clean input the two PGDs are the same algorithm: they must agree to a digit or two.
    With random starts each draws its own (ART's L2 start is uniform in the ball's volume, so almost
    on its sphere in 64 dimensions; ours is uniform in radius), so the step-size-free APGD with its
    random start is the check on ours."""
    model = digits_cnn()
    x, y = digits()[1].tensors
    ours = accuracy(model, PGD(eps, norm=norm, steps=20)(model, x, y), y)
    from_clean = accuracy(model, PGD(eps, norm=norm, steps=20, random_start=False)(model, x, y), y)
    art = accuracy(model, art_pgd(model, x, y, eps, norm, steps=20), y)
    apgd = accuracy(model, APGD(eps, norm=norm, steps=50)(model, x, y), y)
    assert 0.1 < ours < 0.9  # neither attack is trivially at 0 % or at clean accuracy
    assert abs(from_clean - art) <= 0.01 and abs(ours - apgd) <= AGREE, (from_clean, art, ours, apgd)
    if norm == "linf":
        assert ours < accuracy(model, FGSM(eps)(model, x, y), y)


def test_square_beats_fgsm_on_a_plain_cnn():
    model = digits_cnn()
    x, y = digits()[1].tensors
    fgsm = accuracy(model, FGSM(0.2)(model, x, y), y)
    square = accuracy(model, Square(0.2, max_queries=300)(model, x, y), y)
    assert fgsm < 0.5 and square <= fgsm - 0.05, (square, fgsm)


ART_ATTACKS = [APGD(0.1, steps=5), APGD(0.5, norm="l2", steps=5), APGD(0.1, steps=5, loss="dlr"),
               Square(0.1, max_queries=20), Square(0.5, norm="l2", max_queries=20)]


@pytest.mark.parametrize("attack", ART_ATTACKS, ids=lambda a: f"{a.label}-{getattr(a, 'loss', '')}")
def test_art_attacks_stay_in_the_ball_and_leave_model_and_global_rngs_alone(attack):
    model = small_mlp()
    model.train()
    model[1].weight.grad = torch.ones_like(model[1].weight)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = images()
    np_state, py_state = np.random.get_state(), random.getstate()
    x_adv = attack(model, x, y)
    assert np.array_equal(np_state[1], np.random.get_state()[1]) and py_state == random.getstate()
    assert torch.equal(x_adv, attack(model, x, y))  # seeded
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and x_adv.min() >= 0 and x_adv.max() <= 1
    delta = (x_adv - x).flatten(1)
    size = delta.abs().max(1).values if attack.norm == "linf" else delta.norm(dim=1)
    assert size.max() <= attack.eps + 1e-6 and size.max() > 0
    robust_accuracy(model, (x, y), attack, batch_size=8, progress=False)
    assert model.training
    assert torch.equal(model[1].weight.grad, torch.ones_like(model[1].weight)) and model[3].weight.grad is None
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p, q) and p.requires_grad


def test_square_draws_differ_with_the_seed():
    model, (x, y) = small_mlp(), images()
    assert not torch.equal(Square(0.1, max_queries=20, seed=0)(model, x, y), Square(0.1, max_queries=20, seed=1)(model, x, y))


def test_missing_art_is_a_clear_error_naming_the_package(monkeypatch):
    for name in [name for name in sys.modules if name == "art" or name.startswith("art.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install adversarial-robustness-toolbox==1\.20\.1"):
        APGD(0.1)(small_mlp(), *images())


@pytest.mark.parametrize("make, match", [
    (lambda: APGD(0.1, loss="kl"), "unknown loss 'kl'"),
    (lambda: APGD(0.1, norm="l1"), "unknown norm"),
    (lambda: APGD(0.1, steps=0), "steps must be"),
    (lambda: Square(-0.1), "eps must be"),
    (lambda: Square(0.1, p_init=0.0), "p_init must be"),
    (lambda: Square(0.1, max_queries=0), "max_queries must be"),
])
def test_bad_arguments_are_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_art_sees_nan_logits_for_nan_candidates_even_through_an_ode_solver():
    """ART's L2 Square proposes 0/0 candidates; an ODE block's solver would reject them, so the
    classifier ART wraps answers NaN for those rows and the model's logits for the others."""
    from nodekit.attacks import _NaNForNonFiniteRows
    from nodekit.errors import NonFiniteStateError
    from nodekit.fields import LinearField
    from nodekit.models import ODEBlock, ODENet

    model = ODENet(nn.Flatten(), ODEBlock(LinearField(matrix=-torch.eye(4))), nn.Linear(4, 3))
    x = torch.rand(3, 1, 2, 2)
    bad = x.clone()
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteStateError):
        model(bad)
    out = _NaNForNonFiniteRows(model)(bad)
    assert out[1].isnan().all() and not out[[0, 2]].isnan().any()
    assert torch.allclose(out[[0, 2]], model(x)[[0, 2]], atol=1e-5)
    assert torch.equal(_NaNForNonFiniteRows(model)(x), model(x))
