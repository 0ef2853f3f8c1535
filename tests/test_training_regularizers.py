"""nodekit.training.regularizers: TisODE's steady-state penalty against its closed form, and its checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nodekit.fields import LinearField, SineField
from nodekit.models import ODEBlock, ODENet, tisode
from nodekit.models.sodef import FeatureStage, simplex_head
from nodekit.training.regularizers import (
    LyapunovRegularizer,
    SteadyStateRegularizer,
    diagonal_penalty,
    equilibrium_penalty,
    gershgorin_margin,
    gershgorin_penalty,
    steady_state_penalty,
)


def linear_odenet(rate: float, t1: float, step: float) -> ODENet:
    """Identity encoder and decoder around ``z' = rate · z`` solved by RK4 on [0, t1]."""
    field = LinearField(matrix=rate * torch.eye(3, dtype=torch.float64))
    block = ODEBlock(field, t1=t1, method="rk4", options={"step_size": step})
    return ODENet(nn.Identity(), block, nn.Identity())


@pytest.mark.parametrize("rate", [-2.0, -0.5, 0.7])
def test_penalty_matches_the_closed_form_on_a_linear_field(rate):
    """For z' = a z, ‖f(z(t))‖ = |a| ‖z0‖ e^{at}: the integral over [T, T + ΔT] is
    ‖z0‖ |e^{a(T+ΔT)} − e^{aT}|, averaged over the batch."""
    T, dT = 1.0, 0.05
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model = linear_odenet(rate, T, step=1e-3)
    penalty = steady_state_penalty(model, x, window=(T, T + dT))
    exact = (x.norm(dim=1) * abs(math.exp(rate * (T + dT)) - math.exp(rate * T))).mean()
    assert penalty.item() == pytest.approx(exact.item(), rel=1e-5)


def test_penalty_vanishes_at_an_equilibrium():
    model = linear_odenet(-1.0, 1.0, step=0.01)
    assert steady_state_penalty(model, torch.zeros(4, 3, dtype=torch.float64)).item() == 0.0


@pytest.mark.parametrize("window", [(1.05, 1.0), (-0.1, 1.0), (1.0, 1.0)])
def test_a_bad_window_is_rejected_at_construction(window):
    with pytest.raises(ValueError, match=r"window must be \(T, T \+ ΔT\) with 0 <= T < T \+ ΔT"):
        SteadyStateRegularizer(window=window)


def test_regularizer_is_off_before_its_epoch_and_weighted_after():
    model = linear_odenet(-1.0, 1.0, step=0.01)
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    reg = SteadyStateRegularizer(weight=0.5, window=(1.0, 1.05), from_epoch=2)
    assert reg(model, x, None, epoch=1).item() == 0.0
    assert reg(model, x, None, epoch=2).item() == pytest.approx(0.5 * steady_state_penalty(model, x).item())


def test_steady_state_penalty_vanishes_at_a_steady_state_and_reuses_features():
    torch.manual_seed(0)
    model = tisode(4, step_size=0.05)
    x = torch.rand(5, 1, 28, 28)
    model(x)
    from_x = steady_state_penalty(model, x, (1.0, 1.05))
    assert from_x > 0
    assert torch.allclose(steady_state_penalty(model, None, (1.0, 1.05)), from_x, atol=1e-6)
    nn.init.zeros_(model.block.field.norm3.weight)  # the field's last layer outputs 0: f ≡ 0
    nn.init.zeros_(model.block.field.norm3.bias)
    assert steady_state_penalty(model, x) == 0
    with pytest.raises(ValueError, match="window"):
        steady_state_penalty(model, x, (1.0, 0.5))

# SODEF's stability terms ---------------------------------------------------------------------- #


def test_gershgorin_margin_is_the_off_diagonal_row_sum_minus_the_diagonal():
    jac = torch.tensor([[[-3.0, 1.0, -1.0], [0.5, 2.0, 0.0], [2.0, 2.0, -1.0]]])
    assert gershgorin_margin(jac).tolist() == [[2.0 - 3.0, 0.5 - 2.0, 4.0 - 1.0]]


def test_penalties_match_their_closed_forms():
    jac = torch.tensor([[[-3.0, 1.0], [0.5, 2.0]]])
    assert diagonal_penalty(jac).item() == pytest.approx((math.exp(-2.0) + math.exp(3.0)) / 2)
    margins = [1.0 - 3.0, 0.5 - 2.0]
    assert gershgorin_penalty(jac).item() == pytest.approx(sum(math.exp(0.1 * (m + 1)) for m in margins) / 2)
    assert equilibrium_penalty(torch.tensor([[0.1, -0.2]]), scale=50.0).item() == pytest.approx((25 + 100) / 2)


def test_lyapunov_regularizer_on_a_zero_field_is_exp_of_the_shifts():
    """W = 0, b = 0: f ≡ 0 and J ≡ 0, so the value is 0.2·0 + 10·e^1 + 10·e^{0.1}."""
    field = SineField(4)
    nn.init.zeros_(field.linear.weight)
    nn.init.zeros_(field.linear.bias)
    z = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    value = LyapunovRegularizer()(FeatureStage(field, simplex_head(4, 3)), z, torch.zeros(16), 0)
    assert value.item() == pytest.approx(10 * math.e + 10 * math.exp(0.1), rel=1e-6)


def test_lyapunov_regularizer_uses_the_jacobian_of_the_field():
    """A field with a strongly negative, dominant Jacobian at z = 0 scores below the zero field."""
    field = SineField(4)
    with torch.no_grad():
        field.linear.weight.copy_(3 * torch.eye(4))  # J = -diag(cos(3z)) 3I = -3I at z = 0
        field.linear.bias.zero_()
    terms = LyapunovRegularizer().terms(field, torch.zeros(8, 4))
    assert terms["diagonal"].item() == pytest.approx(math.exp(-2.0), rel=1e-6)
    assert terms["dominance"].item() == pytest.approx(math.exp(0.1 * (-3 + 1)), rel=1e-6)
    assert terms["equilibrium"].item() == 0.0


def test_lyapunov_regularizer_trains_the_field_only():
    field = SineField(4)
    stage = FeatureStage(field, simplex_head(4, 3))
    LyapunovRegularizer()(stage, torch.randn(8, 4), torch.zeros(8), 0).backward()
    assert field.linear.weight.grad is not None and field.linear.weight.grad.abs().sum() > 0
    assert stage.head.weight.grad is None


def test_lyapunov_regularizer_rejects_bad_settings_and_models():
    with pytest.raises(ValueError, match="weights"):
        LyapunovRegularizer(diagonal=-1.0)
    with pytest.raises(ValueError, match="samples"):
        LyapunovRegularizer(samples=0)
    with pytest.raises(ValueError, match="field"):
        LyapunovRegularizer()(nn.Linear(4, 4), torch.zeros(2, 4), torch.zeros(2), 0)
