"""nodekit.measure.gradients: the four gradient routes agree; bad routes and targets are clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from nodekit.fields import ConcatConv2d
from nodekit.measure.gradients import Gradients, loss_gradients
from nodekit.measure.memory import peak_memory

F64 = torch.float64


class Linear(nn.Module):
    """z' = W z + b sin(t): linear in z, explicitly time dependent."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[-0.5, -1.0], [1.0, -0.3]], dtype=F64))
        self.b = nn.Parameter(torch.tensor([0.3, -0.2], dtype=F64))

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return z @ self.w.T + self.b * torch.sin(t)


def linear() -> tuple[nn.Module, Tensor]:
    return Linear(), torch.tensor([[1.0, 0.5], [-0.3, 0.8]], dtype=F64)


class SmoothConv(nn.Module):
    """Two time-aware 3x3 convolutions with a tanh between them: a conv field smooth enough
    for fixed-step gradients to converge at the method's order (ReLU kinks slow that down)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = ConcatConv2d(channels, channels), ConcatConv2d(channels, channels)

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self.conv2(t, torch.tanh(self.conv1(t, z)))


def conv() -> tuple[nn.Module, Tensor]:
    torch.manual_seed(1)
    return SmoothConv(4).double(), torch.randn(2, 4, 5, 5, dtype=F64)


def weighted_loss(shape: torch.Size) -> callable:
    """A loss of the states at every output time, with fixed random weights."""
    weights = torch.randn(shape, dtype=F64, generator=torch.Generator().manual_seed(7))
    return lambda ys: (weights * ys).sum() + 0.1 * ys[-1].square().sum()


def assert_close(a: Gradients, b: Gradients, rtol: float) -> None:
    scale = b.max_abs()
    for name, diff in a.max_abs_diff(b).items():
        assert diff <= rtol * max(scale[name], 1.0), f"{name}: max |diff| {diff:.2e}"



def test_all_routes_agree_with_finite_differences_on_the_conv_field() -> None:
    field, y0 = conv()
    y0 = y0[:1, :, :3, :3]
    t = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    loss = weighted_loss((len(t), *y0.shape))
    # 0.0245 does not divide the intervals, so t ± eps keeps the number of steps (and the
    # discrete solution stays smooth in t).
    rk4 = dict(method="rk4", options={"step_size": 0.0245})
    reference = loss_gradients("finite differences", field, y0, t, loss, eps=1e-6, **rk4)
    for route in ("backprop", "adjoint"):
        assert_close(loss_gradients(route, field, y0, t, loss, **rk4), reference, rtol=1e-6)
    # torchdiffeq's fixed-grid solvers keep one grid over [t0, tN] and interpolate the outputs.
    assert_close(loss_gradients("torchdiffeq", field, y0, t, loss, **rk4), reference, rtol=1e-4)


def test_unknown_route_and_bad_memory_target() -> None:
    field, y0 = linear()
    with pytest.raises(ValueError, match="unknown route"):
        loss_gradients("guess", field, y0, torch.tensor([0.0, 1.0], dtype=F64), lambda ys: ys.sum())
    with pytest.raises(ValueError, match="package.module:function"):
        peak_memory("nodekit.measure.gradients.memory_workload")
    with pytest.raises(RuntimeError, match="failed in the child"):
        peak_memory("nodekit.measure.gradients:memory_workload", route="guess", steps=10)

