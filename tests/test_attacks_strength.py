"""nodekit.attacks: SPSA finds perturbations that work, not only ones that stay in the ball.

On a linear classifier the best L∞ perturbation is known in closed form; on a plain CNN trained for
a few seconds a properly sized SPSA must beat FGSM (the check chapter 6's masking test relies on).
"""

import pytest
import torch
from problems import accuracy, digits, digits_cnn
from torch import nn

from nodekit.attacks import FGSM, SPSA, GaussianNoise


def linear_problem(d: int = 64, n: int = 64) -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A two-class linear classifier whose true class 0 wins by a margin no ε ≤ 0.1 can overturn (so
    SPSA never stops early), inputs in [0.3, 0.7] (so the pixel range does not bind), and
    ``w = w_1 − w_0``: the margin logit₁ − logit₀ rises by ``w · δ``, at most ``ε ‖w‖₁`` at
    ``δ = ε sign(w)``."""
    g = torch.Generator().manual_seed(0)
    linear = nn.Linear(d, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(2, d, generator=g))
        linear.bias.copy_(torch.tensor([100.0, 0.0]))
    x = 0.3 + 0.4 * torch.rand(n, 1, 8, 8, generator=g)
    return nn.Sequential(nn.Flatten(), linear), x, torch.zeros(n, dtype=torch.long), linear.weight[1] - linear.weight[0]


def test_spsa_raises_the_margin_nearly_as_much_as_the_optimal_perturbation():
    model, x, y, w = linear_problem()
    eps = 0.1
    best = eps * w.abs().sum()
    delta = (SPSA(eps, steps=40, samples=64)(model, x, y) - x).flatten(1)
    gain = delta @ w
    assert (gain >= 0.85 * best).all(), (gain / best).min()
    assert (delta.sign() == w.sign()).float().mean() >= 0.9
    # random signs of the same L∞ (and L2) size gain nothing on average
    g = torch.Generator().manual_seed(1)
    noise = eps * (torch.randint(0, 2, delta.shape, generator=g) * 2 - 1).float()
    assert (noise @ w).abs().mean() < 0.2 * best
    assert (gain > (noise @ w)).all()


def test_a_properly_sized_spsa_beats_fgsm_and_noise_on_a_plain_cnn():
    model = digits_cnn()
    x, y = digits()[1].tensors
    eps = 0.2
    clean, fgsm = accuracy(model, x, y), accuracy(model, FGSM(eps)(model, x, y), y)
    spsa = accuracy(model, SPSA(eps, steps=50, samples=32, lr=0.02)(model, x, y), y)
    g = torch.Generator().manual_seed(0)
    signs = eps * (torch.randint(0, 2, x.shape, generator=g) * 2 - 1)
    noise = accuracy(model, (x + signs).clamp(0, 1), y)
    assert clean > 0.95
    assert fgsm < clean - 0.5  # the model is not robust: FGSM works ...
    assert spsa <= fgsm - 0.05, (spsa, fgsm)  # ... and SPSA, from outputs only, does better
    assert spsa <= noise - 0.5, (spsa, noise)


def test_l2_spsa_raises_the_margin_nearly_as_much_as_the_optimal_perturbation():
    """In the L2 ball the best perturbation of a linear margin is ``ε w / ‖w‖₂``, a gain of ``ε ‖w‖₂``."""
    model, x, y, w = linear_problem()
    eps = 0.5
    x_adv = SPSA(eps, norm="l2", steps=40, samples=64)(model, x, y)
    delta = (x_adv - x).flatten(1)
    assert delta.norm(dim=1).max() <= eps + 1e-5 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert (delta @ w >= 0.85 * eps * w.norm()).all(), (delta @ w / (eps * w.norm())).min()


def test_l2_spsa_fools_a_plain_cnn_and_stays_in_the_ball():
    model = digits_cnn()
    x, y = digits()[1].tensors
    x, y = x[:100], y[:100]
    eps = 1.0
    x_adv = SPSA(eps, norm="l2", steps=20, samples=32, lr=0.02)(model, x, y)
    assert (x_adv - x).flatten(1).norm(dim=1).max() <= eps + 1e-5
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(x.shape, generator=g)
    noise = (x + eps * direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).clamp(0, 1)
    clean, spsa, noisy = accuracy(model, x, y), accuracy(model, x_adv, y), accuracy(model, noise, y)
    assert clean > 0.95 and noisy > 0.9, (clean, noisy)  # a random L2 step of size ε does little ...
    assert spsa <= 0.3, spsa  # ... SPSA's, from outputs only, fools most examples


@pytest.mark.parametrize("sigma", [0.0, 25.0])
def test_noise_of_zero_size_and_small_noise_leave_the_cnn_accurate(sigma):
    model = digits_cnn()
    x, y = digits()[1].tensors
    noisy = GaussianNoise(sigma)(model, x, y)
    assert torch.equal(noisy, x) == (sigma == 0)
    assert accuracy(model, noisy, y) > 0.9
