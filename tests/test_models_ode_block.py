"""nodekit.models.ode_block: the ODE block records its NFE, matches the solver, has an adjoint option."""

from __future__ import annotations

import pytest
import torch
from problems import F64
from torch import nn

import nodekit
from nodekit.fields import LinearField, MLPField
from nodekit.measure.timing import backprop_vs_adjoint
from nodekit.models import ODEBlock, at_end_time, small_mnist_odenet


@pytest.mark.parametrize("field", [MLPField(3, 16), MLPField(3, 16, time="input")])
def test_ode_block_records_nfe_and_matches_solver(field):
    block = ODEBlock(field, t1=0.5, method="rk4", options={"step_size": 0.1})
    z = torch.randn(4, 3)
    out = block(z)
    assert block.last_stats.nfe == 5 * 4
    expected = nodekit.odeint(field, z, torch.tensor([0.0, 0.5]), method="rk4", options={"step_size": 0.1})[-1]
    assert torch.allclose(out, expected)


def test_ode_block_adjoint_option() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), ODEBlock(MLPField(4, hidden=16), rtol=1e-9, atol=1e-9), nn.Linear(4, 2))
    model = model.double()
    x, y = torch.randn(8, 3, dtype=F64), torch.randint(0, 2, (8,))
    loss = nn.functional.cross_entropy
    costs = backprop_vs_adjoint(model, x, y, loss, repeats=2)
    backprop, adjoint = costs["backprop"], costs["adjoint"]
    assert model[1].adjoint is False  # restored
    assert backprop.seconds > 0 and adjoint.seconds > 0
    assert backprop.backward_nfe == 0 and adjoint.backward_nfe > 0
    assert adjoint.forward_nfe == backprop.forward_nfe
    assert (adjoint.gradient - backprop.gradient).abs().max() <= 1e-6 * backprop.gradient.abs().max()
    block = ODEBlock(MLPField(2), adjoint=True)
    assert "adjoint=True" in repr(block) and "adjoint" not in repr(ODEBlock(MLPField(2)))
    block(torch.randn(5, 2)).sum().backward()
    assert block.last_backward_stats.nfe > 0 and block.last_stats.nfe > 0
    conv_net = small_mnist_odenet(channels=4, adjoint=True)
    conv_net(torch.randn(2, 1, 28, 28)).sum().backward()
    assert conv_net.block.last_backward_stats.intervals == 1



def test_random_end_time_is_drawn_per_training_call_and_fixed_in_eval_mode() -> None:
    torch.manual_seed(0)
    block = ODEBlock(MLPField(2, 8), t1=5.0, t1_range=(2.0, 4.0), method="rk4", options={"step_size": 0.5})
    z = torch.randn(3, 2)
    drawn = []
    for _ in range(20):
        block(z)
        drawn.append(block.last_t1)
    assert all(2.0 <= t <= 4.0 for t in drawn) and len(set(drawn)) == 20
    block.eval()
    block(z)
    assert block.last_t1 == 5.0
    assert "t1_range=(2.0, 4.0)" in repr(block) and "t1_range" not in repr(ODEBlock(MLPField(2)))


def test_at_end_time_evaluates_the_same_field_to_another_time_and_restores_the_block() -> None:
    field = MLPField(3, 16)
    model = nn.Sequential(nn.Identity(), ODEBlock(field, t1=1.0, t1_range=(1.0, 2.0), method="rk4",
                                                  options={"step_size": 0.1}))
    z = torch.randn(4, 3)
    with at_end_time(model, 3.0):
        out = model(z)  # training mode, but the range is off inside
        assert model[1].last_stats.nfe == 4 * 30
    expected = nodekit.odeint(field, z, torch.tensor([0.0, 3.0]), method="rk4", options={"step_size": 0.1})[-1]
    assert torch.allclose(out, expected)
    assert model[1].t1 == 1.0 and model[1].t1_range == (1.0, 2.0)
    with pytest.raises(ValueError, match="at least one ODEBlock"), at_end_time(nn.Linear(2, 2), 1.0):
        pass


@pytest.mark.parametrize("kw, match", [(dict(t1=0.0), "t1 must be a positive"), (dict(t1_range=(3.0, 2.0)), "t1_range")])
def test_ode_block_rejects_bad_end_times(kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        ODEBlock(MLPField(2), **kw)


def test_repr_shows_per_element_tolerances():
    """The repr is part of training cache keys: per-element tolerances print with their values."""
    field = LinearField(2)
    block = ODEBlock(field, rtol=torch.tensor([1e-3, 1e-5]), atol=1e-6)
    assert "rtol=tensor([0.001, 1e-05]), atol=1e-06" in repr(block)
    assert repr(block) != repr(ODEBlock(field, rtol=torch.tensor([1e-3, 1e-4]), atol=1e-6))
    assert "rtol=0.001, atol=1e-06" in repr(ODEBlock(field, rtol=1e-3, atol=1e-6))
