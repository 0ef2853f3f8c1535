"""nodekit.attacks: inputs outside the valid range, empty data, attacks that are not dataclasses."""

import pytest
import torch
from problems import images, small_mlp
from torch import nn
from torch.utils.data import TensorDataset

from nodekit.attacks import FGSM, PGD, SPSA, Attack, GaussianNoise, robust_accuracy

MNIST_NORMALISED = ((0 - 0.1307) / 0.3081, (1 - 0.1307) / 0.3081)  # about (-0.42, 2.82)


def normalised_digits(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = images(n)
    lo, hi = MNIST_NORMALISED
    return lo + (hi - lo) * x, y


@pytest.mark.parametrize("attack", [GaussianNoise(0), FGSM(0.1), PGD(0.1, steps=2), SPSA(0.1, steps=2, samples=4)],
                         ids=lambda a: a.label)
def test_inputs_outside_clip_are_rejected_with_the_fix(attack):
    x, y = normalised_digits()
    with pytest.raises(ValueError, match=r"inputs lie in \[-0.42.*2.82.*\[0, 1\].*clip=\(low, high\)"):
        attack(small_mlp(), x, y)
    with pytest.raises(ValueError, match="clip="):
        robust_accuracy(small_mlp(), (x, y), attack, progress=False)


def test_attacks_with_a_matching_clip_keep_normalised_inputs():
    x, y = normalised_digits()
    assert torch.equal(GaussianNoise(0, clip=MNIST_NORMALISED)(small_mlp(), x, y), x)
    x_adv = FGSM(0.1, clip=MNIST_NORMALISED)(small_mlp(), x, y)
    assert (x_adv - x).abs().max() == pytest.approx(0.1)
    assert x_adv.min() >= MNIST_NORMALISED[0] and x_adv.max() <= MNIST_NORMALISED[1]


def test_inputs_with_nan_are_rejected():
    x, y = images(4)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="inputs lie in"):
        FGSM(0.1)(small_mlp(), x, y)


@pytest.mark.parametrize("data", [(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)),
                                  TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))],
                         ids=["tuple", "dataset"])
def test_robust_accuracy_of_empty_data_is_a_clear_error(data):
    with pytest.raises(ValueError, match="no examples"):
        robust_accuracy(small_mlp(), data, FGSM(0.1), progress=False)


class Shift(Attack):
    """A plain (non-dataclass) attack: shifts every pixel by ``amount``."""

    def __init__(self, amount: float) -> None:
        self.amount = amount

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x + self.amount).clamp(0, 1)


class RandomSign(Attack):
    """A plain attack with its own random draws, seeded by ``seed``."""

    def __init__(self, eps: float, seed: int = 0) -> None:
        self.eps, self.seed = eps, seed

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed)
        return (x + self.eps * (torch.randint(0, 2, x.shape, generator=g) * 2 - 1)).clamp(0, 1)


def test_plain_attack_subclasses_work_in_robust_accuracy():
    model = small_mlp()
    x, y = images(40)
    shifted = Shift(0.2)
    by_hand = (model(shifted(model, x, y)).argmax(1) == y).float().mean().item()
    assert robust_accuracy(model, (x, y), shifted, batch_size=16, progress=False) == pytest.approx(by_hand)


def test_plain_attack_with_a_seed_draws_fresh_noise_for_every_batch():
    attack = RandomSign(0.1, seed=3)
    x = torch.full((2, 1, 8, 8), 0.5)
    first, second = attack.for_batch(0), attack.for_batch(1)
    assert first is attack and second.seed != attack.seed and attack.seed == 3
    assert not torch.equal(first(small_mlp(), x, None), second(small_mlp(), x, None))
