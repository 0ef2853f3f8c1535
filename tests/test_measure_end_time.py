"""nodekit.measure.end_time: accuracy, robustness and NFE of an ODE-net at end times it was not trained for."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nodekit.attacks import FGSM
from nodekit.fields import LinearField
from nodekit.measure.end_time import (
    accuracy_over_end_times,
    nfe_over_end_times,
    robust_accuracy_over_end_times,
)
from nodekit.models import ODEBlock, ODENet

ROTATION = torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # z' = R z turns the plane by the angle t


def rotating_net(**block_kw) -> ODENet:
    """Logits = the state itself, rotated by the end time: correct at t = 0 and 2π, all wrong at t = π."""
    kw = dict(rtol=1e-7, atol=1e-7, **block_kw)
    return ODENet(nn.Identity(), ODEBlock(LinearField(matrix=ROTATION), t1=0.1, **kw), nn.Identity())


def points() -> TensorDataset:
    x = torch.tensor([[0.9, 0.1], [0.8, 0.3], [0.2, 0.7], [0.1, 0.6]])
    return TensorDataset(x, x.argmax(1))


def test_accuracy_follows_the_rotation_of_the_state() -> None:
    net, data = rotating_net(), points()
    accuracy = accuracy_over_end_times(net, data, [0.1, math.pi, 2 * math.pi], batch_size=3)
    assert accuracy == pytest.approx([1.0, 0.0, 1.0])
    # the dense output of one solve agrees with one solve per end time
    separate = robust_accuracy_over_end_times(net, data, None, [0.1, math.pi, 2 * math.pi], progress=False)
    assert separate == pytest.approx(accuracy)
    assert float(net.block.t[-1]) == pytest.approx(0.1)  # the block's own end time is restored


def test_attacks_are_crafted_at_each_end_time() -> None:
    torch.manual_seed(0)
    net, data = rotating_net(), points()
    # at t = pi every point is already misclassified, so FGSM cannot help it; at t = 2 pi a large step fools it
    fooled = robust_accuracy_over_end_times(net, data, FGSM(0.5), [math.pi, 2 * math.pi], progress=False)
    clean = robust_accuracy_over_end_times(net, data, None, [math.pi, 2 * math.pi], progress=False)
    assert clean == pytest.approx([0.0, 1.0])
    assert fooled[0] == 0.0 and fooled[1] < 1.0


def test_nfe_over_end_times_counts_fixed_steps_exactly() -> None:
    net = rotating_net(method="euler", options={"step_size": 0.25})
    assert nfe_over_end_times(net, torch.randn(3, 2), [0.5, 1.0, 2.5]) == [2, 4, 10]


@pytest.mark.parametrize("times", [[], [1.0, 1.0], [2.0, 1.0], [0.0, 1.0]])
def test_end_times_must_be_positive_and_increasing(times) -> None:
    with pytest.raises(ValueError, match="positive and strictly increasing"):
        accuracy_over_end_times(rotating_net(), points(), times)
