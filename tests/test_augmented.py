"""Augmented neural ODEs, the concentric-spheres data, and fit() with a ±1 regression target."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nodekit.models import AugmentedODE, ODEBlock, conv_anode, count_parameters, forward_nfe, mlp_anode
from nodekit.models.augmented import readout_axes
from nodekit.toy_data import concentric_spheres, flip_1d
from nodekit.train import TrainConfig, evaluate, fit, sign_prediction


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))


# ----------------------------------------------------------------------------------------------- data


def test_concentric_spheres_follows_the_published_layout():
    x, y = concentric_spheres(2, 0.5, 1.0, 1.5, 2000).tensors
    assert x.shape == (2000, 2) and y.shape == (2000, 1) and x.dtype == y.dtype == torch.float32
    radius = x.norm(dim=1)
    inner = y[:, 0] == -1
    assert inner.sum() == 500 and (y[~inner] == 1).all()
    assert radius[inner].max() <= 0.5 + 1e-6
    assert radius[~inner].min() >= 1.0 - 1e-6 and radius[~inner].max() <= 1.5 + 1e-6


def test_concentric_spheres_is_uniform_in_volume_and_seeded():
    x, y = concentric_spheres(3, 1.0, 2.0, 3.0, 20_000, inner_fraction=0.5, seed=4).tensors
    inner_radius = x[y[:, 0] == -1].norm(dim=1)
    # uniform in the unit ball of R^3: P(r <= 0.5) = 0.5^3
    assert (inner_radius <= 0.5).float().mean().item() == pytest.approx(0.125, abs=0.01)
    assert torch.equal(x, concentric_spheres(3, 1.0, 2.0, 3.0, 20_000, inner_fraction=0.5, seed=4).tensors[0])
    assert not torch.equal(x, concentric_spheres(3, 1.0, 2.0, 3.0, 20_000, inner_fraction=0.5, seed=5).tensors[0])


def test_concentric_spheres_in_one_dimension_has_both_outer_sides():
    x, y = concentric_spheres(1, 0.5, 1.0, 1.5, 400).tensors
    outer = x[y[:, 0] == 1, 0]
    assert (outer > 0).any() and (outer < 0).any() and (outer.abs() >= 1.0 - 1e-6).all()


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((2, 1.0, 0.5, 1.5, 100), {}, "0 < r1 < r2 < r3"),
        ((2, 0.0, 1.0, 1.5, 100), {}, "0 < r1 < r2 < r3"),
        ((0, 0.5, 1.0, 1.5, 100), {}, "dimension d"),
        ((2, 0.5, 1.0, 1.5, 2), {"inner_fraction": 0.1}, "leaves a class empty"),
        ((2, 0.5, 1.0, 1.5, 100), {"inner_fraction": 1.0}, "inner_fraction"),
    ],
)
def test_concentric_spheres_rejects_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        concentric_spheres(*args, **kwargs)


def test_flip_1d_targets_are_the_negated_inputs():
    x, y = flip_1d(64, noise=0.1, seed=1).tensors
    assert x.shape == (64, 1) and torch.equal(y, -x)
    assert set(flip_1d(64).tensors[0].flatten().tolist()) == {-1.0, 1.0}
    with pytest.raises(ValueError, match="noise"):
        flip_1d(8, noise=-1.0)


# ---------------------------------------------------------------------------------------------- model


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


class _HalfTurn(nn.Module):
    """dz/dt = A z with A the rotation generator at angular speed π: the time-1 map turns by 180°."""

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return math.pi * torch.stack([-z[:, 1], z[:, 0]], dim=1)


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


# ------------------------------------------------------------------------------------------- training


def test_fit_regresses_g1_with_sign_accuracy_and_per_batch_records():
    train = concentric_spheres(1, 0.5, 1.0, 1.5, 512, seed=0)
    test = concentric_spheres(1, 0.5, 1.0, 1.5, 256, seed=1)
    torch.manual_seed(0)
    anode = mlp_anode(1, augment_dim=1)
    config = TrainConfig(epochs=4, lr=1e-2, batch_size=64)
    history = fit(anode, train, test, config, name="g1", loss_fn=F.smooth_l1_loss, predict=sign_prediction, progress=False)
    assert history.test_accuracy[-1] >= 0.95
    assert evaluate(anode, test, predict=sign_prediction) == history.test_accuracy[-1]
    assert len(history.batch_loss) == len(history.batch_forward_nfe) == 4 * 8
    assert history.batch_forward_nfe[0] > 0
    assert sum(history.batch_forward_nfe[:8]) / 8 == pytest.approx(history.forward_nfe[0])
    torch.manual_seed(0)  # the same initial weights: the cache key includes them
    reloaded = fit(mlp_anode(1, augment_dim=1), train, test, config, name="g1",
                   loss_fn=F.smooth_l1_loss, predict=sign_prediction, progress=False)
    assert reloaded.batch_loss == history.batch_loss


def test_sign_prediction():
    assert torch.equal(sign_prediction(torch.tensor([[-0.2], [0.0], [3.0]])), torch.tensor([[-1.0], [1.0], [1.0]]))


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
