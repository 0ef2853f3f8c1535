"""nodekit.attacks against random models: PGD with expectation over transformation (EOT), and the
bitwise guarantee that the new options leave the old attacks alone (chapters 6 and 8 check outputs
that depend on them).

The random model is a linear classifier plus zero-mean noise drawn fresh on every forward pass, one
draw per row of the batch; the noise is small in value but steep (a high-frequency sine), so a
single draw's input gradient mostly points the wrong way while the mean prediction is the linear
model's.
"""

import pytest
import torch
from problems import images, small_mlp
from torch import nn

from nodekit.attacks import PGD, SPSA, _flat_norm, input_gradient, project


class NoisyLinear(nn.Module):
    """``lin(x) + scale / freq · Σⱼ nⱼ sin(freq · xⱼ)`` with ``n ~ N(0, I)`` drawn for every row of
    every batch from the module's own generator: the mean logits are ``lin(x)`` (:meth:`mean`),
    the noise on a logit is small (``scale / freq``) but its input gradient is ``scale``-sized."""

    def __init__(self, d: int = 64, scale: float = 8.0, freq: float = 400.0, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.lin = nn.Linear(d, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(2, d, generator=g))
            self.lin.bias.copy_(-0.5 * self.lin.weight.sum(1))  # the boundary through the centre of [0, 1]^d
        self.scale, self.freq = scale, freq
        self.noise = torch.Generator().manual_seed(seed + 1)

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        n = torch.randn(len(x), 2, x.shape[1], generator=self.noise)
        return self.lin(x) + self.scale / self.freq * (n * torch.sin(self.freq * x)[:, None]).sum(-1)


class Mean(nn.Module):
    """The noise-free mean of a :class:`NoisyLinear` as a deterministic model."""

    def __init__(self, model: NoisyLinear) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.mean(x)


def noisy_problem(n: int = 100) -> tuple[NoisyLinear, torch.Tensor, torch.Tensor]:
    """The random model, inputs in [0.3, 0.7] (the pixel range does not bind) and the mean's labels."""
    model = NoisyLinear()
    x = 0.3 + 0.4 * torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model.mean(x).argmax(1)
    return model, x, y


def mean_accuracy(model: NoisyLinear, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model.mean(x).argmax(1) == y).float().mean().item()


def test_eot_pgd_beats_single_draw_pgd_on_a_random_model():
    model, x, y = noisy_problem()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.95  # one draw is nearly the mean's prediction
    eps = 0.03
    single = mean_accuracy(model, PGD(eps, steps=10)(model, x, y), y)
    eot = mean_accuracy(model, PGD(eps, steps=10, eot=20)(model, x, y), y)
    noise_free = mean_accuracy(model, PGD(eps, steps=10)(Mean(model), x, y), y)  # the mean's own gradients
    assert single >= 0.4, single  # single-draw gradients make the random model look robust ...
    assert eot <= single - 0.25 and eot <= noise_free + 0.1, (eot, single, noise_free)  # ... EOT sees through it


@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("l2", 0.5)])
def test_eot_on_a_deterministic_model_averages_identical_gradients(norm, eps):
    """Each copy's gradient goes back to its own example: on a deterministic model the mean of the
    ``eot`` copies is the one gradient, so the attack matches plain PGD up to rounding."""
    model, (x, y) = small_mlp(), images()
    plain = PGD(eps, norm=norm, steps=5)(model, x, y)
    assert torch.allclose(PGD(eps, norm=norm, steps=5, eot=3)(model, x, y), plain, atol=1e-5)


def test_eot_runs_one_batched_pass_per_step():
    model, (x, y) = small_mlp(), images(6)
    sizes = []
    model.register_forward_pre_hook(lambda module, args: sizes.append(len(args[0])))
    PGD(0.1, steps=2, eot=4)(model, x, y)
    assert sizes == [24, 24, 6]  # two ascent steps on 4 × 6 rows, one forward for the fooled check


def test_labels_name_eot_and_the_l2_norm():
    assert PGD(0.1).label == "PGD-0.1" and PGD(0.1, eot=1).label == "PGD-0.1"
    assert PGD(0.1, eot=20).label == "PGD-0.1 EOT-20"
    assert PGD(0.5, norm="l2", eot=5).label == "PGD-0.5 (L2) EOT-5"
    assert SPSA(0.1).label == "SPSA-0.1" and SPSA(0.5, norm="l2").label == "SPSA-0.5 (L2)"


# ------------------------------------------------------------- the old attacks, written out by hand


def reference_pgd(attack: PGD, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PGD as it was before ``eot``: one gradient per step, the same random draws in the same order."""
    g = torch.Generator().manual_seed(attack.seed)
    best = x.clone()
    fooled = torch.zeros(len(x), dtype=torch.bool)
    for _ in range(attack.restarts):
        idx = torch.nonzero(~fooled)[:, 0]
        x0, y0 = x[idx], y[idx]
        if not attack.random_start:
            delta = torch.zeros_like(x0)
        elif attack.norm == "linf":
            delta = (torch.rand(x0.shape, generator=g) * 2 - 1) * attack.eps
        else:
            direction = torch.randn(x0.shape, generator=g)
            direction = direction / _flat_norm(direction).clamp_min(1e-12)
            radius = torch.rand(x0.shape[0], generator=g).view(-1, *([1] * (x0.dim() - 1)))
            delta = direction * radius * attack.eps
        x_adv = (x0 + delta).clamp(*attack.clip)
        for _ in range(attack.steps):
            grad = input_gradient(model, x_adv, y0)
            step = grad.sign() if attack.norm == "linf" else grad / _flat_norm(grad).clamp_min(1e-12)
            delta = project(x_adv + attack.alpha * step - x0, attack.eps, attack.norm)
            x_adv = (x0 + delta).clamp(*attack.clip).detach()
        with torch.no_grad():
            wrong = model(x_adv).argmax(1) != y0
        best[idx] = x_adv
        fooled[idx] = wrong
        if bool(fooled.all()):
            break
    return best


@torch.no_grad()
def reference_spsa(attack: SPSA, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SPSA as it was before ``norm``: L∞ only, the same random draws in the same order."""
    g = torch.Generator().manual_seed(attack.seed)
    n, half = len(x), attack.samples // 2
    delta, m, v = torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x)
    best, fooled = x.clone(), model(x).argmax(1) != y
    for step in range(1, attack.steps + 1):
        signs = torch.randint(0, 2, (n, half, *x.shape[1:]), generator=g).to(x.dtype) * 2 - 1
        signs = torch.cat([signs, -signs], dim=1)
        logits = model(((x + delta)[:, None] + attack.delta * signs).clamp(*attack.clip).flatten(0, 1))
        loss = SPSA.margin(logits, y.repeat_interleave(attack.samples)).view(n, attack.samples)
        grad = (loss.view(n, attack.samples, *([1] * (x.dim() - 1))) * signs).mean(1) / attack.delta
        m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad * grad
        m_hat, v_hat = m / (1 - 0.9**step), v / (1 - 0.999**step)
        delta = (delta + attack.lr * m_hat / (v_hat.sqrt() + 1e-8)).clamp(-attack.eps, attack.eps)
        delta = (x + delta).clamp(*attack.clip) - x
        now = (model(x + delta).argmax(1) != y) & ~fooled
        best[now] = (x + delta)[now]
        fooled |= now
        if bool(fooled.all()):
            break
    best[~fooled] = (x + delta)[~fooled]
    return best


@pytest.mark.parametrize("attack", [
    PGD(0.1, steps=5), PGD(0.1, steps=5, eot=1, restarts=3, seed=4), PGD(0.5, norm="l2", steps=5, restarts=2),
    PGD(0.1, steps=5, random_start=False),
], ids=lambda a: f"{a.label}-{a.restarts}-{a.random_start}")
def test_pgd_with_one_draw_is_bitwise_the_old_pgd(attack):
    model, (x, y) = small_mlp(), images()
    assert torch.equal(attack(model, x, y), reference_pgd(attack, model, x, y))


@pytest.mark.parametrize("attack", [SPSA(0.1, steps=5, samples=8), SPSA(0.2, norm="linf", steps=4, samples=6, seed=3)],
                         ids=lambda a: f"{a.label}-{a.seed}")
def test_linf_spsa_is_bitwise_the_old_spsa(attack):
    model, (x, y) = small_mlp(), images()
    assert torch.equal(attack(model, x, y), reference_spsa(attack, model, x, y))
