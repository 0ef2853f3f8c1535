"""nodekit.measure.steady_states: equilibrium vs steady direction, class separation, principal components."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from nodekit.fields import LinearField
from nodekit.measure.steady_states import (
    class_separation,
    flow,
    principal_components,
    steady_state_statistics,
)
from nodekit.models import ODEBlock, ODENet

TIMES = [0.0, 1.0, 2.0, 4.0, 8.0]


def net(field: nn.Module) -> ODENet:
    return ODENet(nn.Identity(), ODEBlock(field, rtol=1e-8, atol=1e-8), nn.Identity())


class Constant(nn.Module):
    """f(z) = c: the state moves at a constant velocity, the picture of a steady direction."""

    def __init__(self, c: Tensor) -> None:
        super().__init__()
        self.c = c

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self.c.expand_as(z)


def test_a_contracting_field_reaches_an_equilibrium() -> None:
    z0 = torch.tensor([[1.0, 2.0], [-3.0, 0.5]], dtype=torch.float64)
    stats = steady_state_statistics(flow(net(LinearField(matrix=-torch.eye(2, dtype=torch.float64))), z0,
                                         torch.tensor([0, 1]), TIMES))
    expected = torch.tensor([math.exp(-t) for t in TIMES], dtype=torch.float64) * z0.norm(dim=1).median()
    assert torch.allclose(stats["field_norm"], expected, rtol=1e-5)  # ||f|| = ||z|| -> 0
    assert torch.allclose(stats["field_cosine"], -torch.ones(len(TIMES), dtype=torch.float64))  # f = -z
    assert torch.allclose(stats["direction_cosine_next"], torch.ones(len(TIMES) - 1, dtype=torch.float64))


def test_a_constant_field_is_a_steady_direction() -> None:
    c = torch.tensor([3.0, 4.0], dtype=torch.float64)
    z0 = torch.tensor([[1.0, -2.0], [0.5, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    traj = flow(net(Constant(c)), z0, torch.tensor([0, 1, 1]), [0.0, 1.0, 10.0, 1000.0])
    assert torch.allclose(traj.states[-1], z0.flatten(1) + 1000.0 * c, rtol=1e-9)
    stats = steady_state_statistics(traj)
    assert torch.allclose(stats["field_norm"], torch.full((4,), 5.0, dtype=torch.float64))
    assert torch.allclose(stats["field_change_next"], torch.zeros(3, dtype=torch.float64))
    assert stats["field_cosine"][-1] > 0.9999 and stats["field_cosine"][0] < 0.9
    assert stats["direction_cosine_next"][-1] > 0.999 and stats["direction_cosine_next"][0] < 0.99


def test_flow_needs_times_from_zero() -> None:
    with pytest.raises(ValueError, match="start at 0"):
        flow(net(LinearField(2)), torch.randn(2, 2), torch.tensor([0, 1]), [1.0, 2.0])


def test_class_separation_is_the_ratio_of_mean_distance_to_spread() -> None:
    states = torch.tensor([[0.0, 1.0], [0.0, -1.0], [10.0, 1.0], [10.0, -1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert class_separation(states, labels) == pytest.approx(10.0)
    assert class_separation(7.0 * states, labels) == pytest.approx(10.0)  # scale-free
    assert class_separation(states, torch.tensor([0, 1, 0, 1])) == pytest.approx(2.0 / 5.0)  # means 2 apart, spread 5
    # three classes with means 3, 4 and 5 apart and spread 1: the mean distance over the pairs, 4
    means = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    offsets = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    three = (means[:, None] + offsets).reshape(-1, 2)
    assert class_separation(three, torch.tensor([0, 0, 1, 1, 2, 2])) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="two classes"):
        class_separation(states, torch.zeros(4, dtype=torch.long))


def test_principal_components_find_the_line_the_states_lie_on() -> None:
    s = torch.linspace(-1, 1, 9, dtype=torch.float64)
    states = torch.stack([3 * s, 4 * s, torch.zeros_like(s)], dim=1) + 2.0
    pc = principal_components(states)
    assert torch.allclose(pc[:, 0].abs(), 5 * s.abs(), atol=1e-12)
    assert torch.allclose(pc[:, 1], torch.zeros_like(s), atol=1e-12)
