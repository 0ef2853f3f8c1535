"""nodekit.measure.gradients: the four gradient routes agree; bad routes and targets are clear errors."""

from __future__ import annotations

import pytest
import torch
from problems import F64, assert_close, conv, linear, weighted_loss

from nodekit.measure.gradients import loss_gradients
from nodekit.measure.memory import peak_memory


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

