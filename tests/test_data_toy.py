"""nodekit.data.toy: Dupont et al.'s concentric spheres and the 1-D flip."""

from __future__ import annotations

import pytest
import torch

from nodekit.data.toy import concentric_spheres, flip_1d


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))



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

