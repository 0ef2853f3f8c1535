"""nodekit.models.sodef: the regular simplex head, the encoder, the phase-2 stage and the assembled model."""

from __future__ import annotations

import pytest
import torch

from nodekit.fields import SineField
from nodekit.models import ODENet
from nodekit.models.sodef import (
    FeatureStage,
    regular_simplex,
    simplex_head,
    sodef_encoder,
    sodef_net,
)


@pytest.mark.parametrize("classes, dim", [(2, 2), (3, 5), (10, 64)])
def test_simplex_rows_are_unit_vectors_with_cosine_minus_one_over_k_minus_one(classes, dim):
    v = regular_simplex(classes, dim)
    assert v.shape == (classes, dim)
    gram = v @ v.T
    assert torch.allclose(gram.diagonal(), torch.ones(classes), atol=1e-6)
    off = gram[~torch.eye(classes, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, -1 / (classes - 1)), atol=1e-6)


def test_simplex_is_optimal_the_rows_sum_to_zero():
    """Σ_i v_i = 0 is what makes the largest pairwise cosine as small as it can be (−1/(k−1))."""
    assert regular_simplex(10, 64).sum(0).abs().max() < 1e-6


def test_simplex_rejects_too_few_dimensions():
    with pytest.raises(ValueError, match="dim >= classes"):
        regular_simplex(10, 9)


def test_simplex_head_is_frozen_and_bias_free():
    head = simplex_head(64, 10)
    assert head.bias is None and not head.weight.requires_grad
    assert torch.equal(head.weight, regular_simplex(10, 64))


def test_encoder_maps_digits_into_the_tanh_cube():
    torch.manual_seed(0)
    z = sodef_encoder(width=8, features=64)(torch.rand(3, 1, 28, 28))
    assert z.shape == (3, 64) and z.abs().max() <= 1


def test_feature_stage_returns_the_fixed_head_logits():
    head = simplex_head(4, 3)
    z = torch.randn(5, 4)
    assert torch.equal(FeatureStage(SineField(4), head)(z), head(z))


def test_sodef_net_integrates_the_sine_field_to_t1():
    torch.manual_seed(0)
    net = sodef_net(sodef_encoder(width=8), t1=2.0, tol=1e-4)
    assert isinstance(net, ODENet) and isinstance(net.block.field, SineField)
    assert net.block.t[-1].item() == 2.0 and net.block.rtol == 1e-4
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="t1"):
        sodef_net(sodef_encoder(width=8), t1=0.0)
