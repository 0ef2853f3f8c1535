"""nodekit.data.densities: FFJORD's 2-D toy densities, normalised, sampled and on a grid."""

from __future__ import annotations

import math

import pytest
import torch

from nodekit.data.densities import (
    TOY_DENSITIES,
    entropy_estimate,
    evaluate_on_grid,
    toy_density,
)


@pytest.mark.parametrize("name", TOY_DENSITIES)
def test_toy_density_is_normalised_and_matches_its_samples(name):
    density = toy_density(name)
    assert abs(evaluate_on_grid(density.log_prob, extent=6.0, resolution=600, dtype=torch.float64).mass - 1) <= 0.01
    x = density.sample(4000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4000, 2) and x.dtype == torch.float32
    assert torch.isfinite(density.log_prob(x)).all()  # samples lie where the density is positive
    # Samples are distributed as the density says: the mean NLL of samples is the entropy.
    entropy, se = entropy_estimate(density, n=50_000, seed=1)
    assert abs(-density.log_prob(x.double()).mean().item() - entropy) <= 0.1


def test_toy_density_closed_forms():
    assert entropy_estimate(toy_density("checkerboard"), n=1000)[0] == pytest.approx(math.log(32))
    # 8 Gaussians barely overlap: the entropy is close to log 8 + that of one Gaussian.
    std = 0.5 / 1.414
    separated = math.log(8) + math.log(2 * math.pi * math.e * std**2)
    assert entropy_estimate(toy_density("8gaussians"))[0] == pytest.approx(separated, abs=0.02)


def test_toy_density_samples_are_reproducible():
    a = toy_density("rings").sample(50, generator=torch.Generator().manual_seed(3))
    b = toy_density("rings").sample(50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_evaluate_on_grid():
    grid = evaluate_on_grid(lambda x: -x.pow(2).sum(1) / 2 - math.log(2 * math.pi), extent=6.0, resolution=100)
    assert grid.log_prob.shape == (100, 100) and grid.x[0] == pytest.approx(-5.94)
    assert grid.mass == pytest.approx(1.0, abs=1e-4)
    # Rows follow y, columns follow x.
    tilted = evaluate_on_grid(lambda x: x[:, 1], extent=1.0, resolution=4)
    assert torch.equal(tilted.log_prob[:, 0], tilted.x) and torch.equal(tilted.log_prob[0], tilted.x[0].expand(4))
    with pytest.raises(ValueError, match="need extent > 0 and resolution >= 2"):
        evaluate_on_grid(lambda x: x[:, 0], extent=0.0)


def test_toy_density_errors():
    with pytest.raises(ValueError, match="unknown toy density 'spiral'; choose one of: moons, rings, checkerboard, 8gaussians"):
        toy_density("spiral")
    with pytest.raises(ValueError, match=r"shape \(n, 2\), got \(5, 3\)"):
        toy_density("moons").log_prob(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="positive int"):
        toy_density("moons").sample(-1)

