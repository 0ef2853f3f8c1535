"""Closed forms of stochastic stability and of reversible Heun's parasitic mode."""

import math

import pytest
import torch

from nodekit.fields import LinearField
from nodekit.measure.stochastic import dropout_noise_moments, gbm_rate, growth_rates, liu_bound, reversible_heun_growth
from nodekit.models.sde import DropoutDiffusion, SDEBlock


@pytest.mark.parametrize("keep", [1.0, 0.99, 0.9, 0.75, 0.5])
def test_dropout_noise_has_mean_zero_and_variance_one_minus_p_over_p(keep):
    mean, var = dropout_noise_moments(keep)
    assert mean == pytest.approx(0.0, abs=1e-12)
    assert var == pytest.approx((1 - keep) / keep)


def test_gbm_rates_and_the_bound():
    assert gbm_rate(0.5, 1.5, "ito") == pytest.approx(-0.625)
    assert gbm_rate(0.5, 1.5, "stratonovich") == 0.5
    assert liu_bound(0.2, 1.0) == pytest.approx(-0.3)
    with pytest.raises(ValueError, match="sde_type"):
        gbm_rate(1, 1, "levy")


@pytest.mark.parametrize("x", [-0.25, -0.5, -1.0, -2.0])
def test_reversible_heun_grows_on_a_decaying_mode_as_predicted(x):
    assert reversible_heun_growth(x) == pytest.approx(abs(x) + math.sqrt(x * x + 1))
    lam, dt = x / 0.5, 0.5
    field = LinearField(matrix=torch.tensor([[lam]], dtype=torch.float64))
    b = SDEBlock(field, DropoutDiffusion(1.0), t1=80 * dt, dt=dt, method="reversible_heun", sde_type="stratonovich")
    ts = torch.arange(0, 81, dtype=torch.float64) * dt
    path = b.trajectory(torch.ones(1, 1, dtype=torch.float64), ts)[:, 0, 0].detach()
    ratio = (path[-1] / path[-2]).abs().item()  # the parasitic mode dominates late in the run
    assert ratio == pytest.approx(reversible_heun_growth(x), rel=1e-3)


def test_reversible_heun_is_neutral_on_the_imaginary_segment():
    assert reversible_heun_growth(0.5j) == pytest.approx(1.0)
    assert reversible_heun_growth(1.5j) > 1


def test_growth_rates_shape_and_value():
    ts = torch.tensor([0.0, 1.0, 2.0])
    paths = torch.tensor([[[1.0]], [[math.e]], [[math.e**4]]])
    assert torch.allclose(growth_rates(paths, ts), torch.tensor([[1.0], [2.0]]))
    with pytest.raises(ValueError, match="> 0"):
        growth_rates(paths, torch.tensor([0.0, 0.0, 1.0]))
