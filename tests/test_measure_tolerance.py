"""nodekit.measure.tolerance: test-time tolerance sweeps restore the model."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from nodekit.measure.tolerance import tolerance_sweep
from nodekit.models import (
    mnist_model,
)


def test_tolerance_sweep_restores_tolerances_and_costs_more_when_tight() -> None:
    torch.manual_seed(0)
    model = mnist_model("ODE-Net", 4, tol=1e-3).train()
    data = TensorDataset(torch.randn(20, 1, 28, 28), torch.randint(0, 10, (20,)))
    results = tolerance_sweep(model, data, [1e-1, 1e-5], batch_size=10)
    assert [r.tol for r in results] == [1e-1, 1e-5]
    assert results[0].nfe < results[1].nfe
    assert all(0.0 <= r.accuracy <= 1.0 and r.seconds > 0 for r in results)
    assert (model.block.rtol, model.block.atol) == (1e-3, 1e-3) and model.training
    with pytest.raises(ValueError, match="ODEBlock"):
        tolerance_sweep(mnist_model("ResNet", 4), data, [1e-3])

