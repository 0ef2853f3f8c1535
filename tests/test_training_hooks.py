"""nodekit.training.hooks: batch transforms reject inputs they would silently clip."""

from __future__ import annotations

import pytest
import torch

from nodekit.training.hooks import GaussianAugmentation


def test_gaussian_augmentation_rejects_inputs_outside_its_clip():
    normalised = (torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) - 0.1307) / 0.3081
    with pytest.raises(ValueError, match=r"inputs lie in \[-0.4\d*, 2.\d*\] but GaussianAugmentation keeps its outputs in \[0, 1\]"):
        GaussianAugmentation()(None, normalised, None, 0, torch.Generator())
    wide = GaussianAugmentation(sigmas=(0.0,), clip=(-0.5, 3.0))
    assert torch.equal(wide(None, normalised, None, 0, torch.Generator()), normalised)
