"""nodekit.models.augmented: augmented neural ODEs (Dupont et al.)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nodekit.models import (
    AugmentedODE,
    ODEBlock,
    conv_anode,
    count_parameters,
    forward_nfe,
    mlp_anode,
    readout_axes,
)


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))


class _HalfTurn(nn.Module):
    """dz/dt = A z with A the rotation generator at angular speed π: the time-1 map turns by 180°."""

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return math.pi * torch.stack([-z[:, 1], z[:, 0]], dim=1)



def test_augment_appends_zero_features_or_channels():
    model = mlp_anode(2, augment_dim=3)
    z0 = model.augment(torch.ones(4, 2))
    assert torch.equal(z0, torch.cat([torch.ones(4, 2), torch.zeros(4, 3)], dim=1))
    image_model = conv_anode((1, 6, 6), filters=4, augment_channels=2)
    assert image_model.augment(torch.ones(3, 1, 6, 6)).shape == (3, 3, 6, 6)
    x = torch.randn(5, 2)
    assert mlp_anode(2, augment_dim=0).augment(x) is x


def test_parameter_counts_match_dupont_et_al():
    # toy model: MLP field 7 -> 32 -> 32 -> 7 with time as an input, linear head 7 -> 1
    assert count_parameters(mlp_anode(2, augment_dim=5, hidden=32)) == (8 * 32 + 32) + (32 * 32 + 32) + (32 * 7 + 7) + 8
    # the published parameter-matched MNIST pair (64 filters + 5 channels vs 92 filters)
    assert count_parameters(conv_anode(filters=64, augment_channels=5)) == 85_462
    assert count_parameters(conv_anode(filters=92, augment_channels=0)) == 85_316


def test_forward_shapes_trajectory_and_nfe():
    model = mlp_anode(2, augment_dim=5, out_features=3)
    x = torch.randn(10, 2)
    assert model(x).shape == (10, 3)
    assert forward_nfe(model) > 0
    t = torch.linspace(0, 1, 5)
    path = model.trajectory(x, t)
    assert path.shape == (5, 10, 7)
    assert torch.equal(path[0], model.augment(x))
    assert torch.allclose(path[-1], model.features(x), atol=1e-4)
    assert conv_anode((1, 6, 6), filters=4, augment_channels=2, classes=10)(torch.randn(2, 1, 6, 6)).shape == (2, 10)


def test_without_head_the_output_is_the_data_coordinates():
    model = mlp_anode(1, augment_dim=1, out_features=None)
    x = torch.randn(6, 1)
    assert torch.equal(model(x), model.features(x)[:, :1])


def test_bad_inputs_give_clear_errors():
    model = mlp_anode(2, augment_dim=1)
    with pytest.raises(ValueError, match=r"expected inputs of shape \(batch, 2, \.\.\.\)"):
        model(torch.randn(8, 3))
    with pytest.raises(ValueError, match=r"expected inputs of shape"):
        model(torch.randn(8))
    with pytest.raises(ValueError, match="augment_dim must be an integer >= 0"):
        mlp_anode(2, augment_dim=-1)
    with pytest.raises(ValueError, match="data_dim"):
        AugmentedODE(model.block, data_dim=0)


def test_one_extra_dimension_makes_x_to_minus_x_a_flow():
    # On R^2 the half turn maps (x, 0) to (-x, 0): an ANODE with one augmented dimension represents
    # the map x -> -x exactly, which no flow on the line can (see the next test).
    anode = AugmentedODE(ODEBlock(_HalfTurn(), rtol=1e-7, atol=1e-7), data_dim=1, augment_dim=1)
    x = torch.linspace(-2, 2, 9)[:, None]
    assert torch.allclose(anode(x), -x, atol=1e-5)


def test_flows_on_the_line_preserve_order():
    torch.manual_seed(0)
    node = mlp_anode(1, augment_dim=0, hidden=16, out_features=None, tol=1e-6)
    with torch.no_grad():
        for p in node.parameters():
            p.mul_(3.0)  # a wilder field, still a flow
        x = torch.linspace(-2, 2, 101)[:, None]
        path = node.trajectory(x, torch.linspace(0, 1, 21))[..., 0]
    assert (path[:, 1:] > path[:, :-1]).all()


def test_readout_axes_put_the_decision_at_a_vertical_line():
    torch.manual_seed(0)
    model = mlp_anode(2, augment_dim=5)
    z = torch.randn(200, 7)
    axes, threshold = readout_axes(model, z)
    assert axes.shape == (7, 2) and abs(float(axes[:, 0] @ axes[:, 1])) < 1e-5
    with torch.no_grad():
        positive = model.head(z)[:, 0] > 0
    assert torch.equal(positive, (z @ axes)[:, 0] > threshold)
    with pytest.raises(ValueError, match="readout_axes needs"):
        readout_axes(mlp_anode(2, augment_dim=0, out_features=None), z[:, :2])

