"""Small problems shared by the tests (and usable by the benchmarks): data sets and models that
train in well under a second on one CPU thread."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset


def blobs(n: int, seed: int) -> TensorDataset:
    """Two Gaussian blobs in the plane, centred at ±(3, 3), labels 0/1."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) + 3.0 * (2 * y[:, None] - 1)
    return TensorDataset(x, y)


def blob_classifier(seed: int = 0) -> nn.Module:
    """A 2 → 8 → 2 tanh MLP, initialised from ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
