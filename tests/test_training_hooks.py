"""nodekit.training.hooks: batch transforms reject inputs they would silently clip."""

from __future__ import annotations

import pytest
import torch
from problems import images
from problems import small_mlp as small_model

from nodekit.attacks import FGSM
from nodekit.models import tisode
from nodekit.training.hooks import AdversarialTraining, GaussianAugmentation
from nodekit.training.regularizers import SteadyStateRegularizer


def test_gaussian_augmentation_rejects_inputs_outside_its_clip():
    normalised = (torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) - 0.1307) / 0.3081
    with pytest.raises(ValueError, match=r"inputs lie in \[-0.4\d*, 2.\d*\] but GaussianAugmentation keeps its outputs in \[0, 1\]"):
        GaussianAugmentation()(None, normalised, None, 0, torch.Generator())
    wide = GaussianAugmentation(sigmas=(0.0,), clip=(-0.5, 3.0))
    assert torch.equal(wide(None, normalised, None, 0, torch.Generator()), normalised)


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
