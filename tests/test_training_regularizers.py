"""nodekit.training.regularizers: TisODE's steady-state penalty against its closed form, and its checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nodekit.fields import LinearField
from nodekit.models import ODEBlock, ODENet, tisode
from nodekit.training.regularizers import SteadyStateRegularizer, steady_state_penalty


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
