"""Small test problems shared by the tests (and usable by the benchmarks): two blobs in the plane,
random images, tiny classifiers, synthetic two-class images, scikit-learn's bundled 8×8 digits, a
few-second training loop and a plain CNN trained on the digits.

Everything is seeded by an explicit generator or seed, so a problem is the same on every run.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from nodekit import data
from nodekit.data import write_idx
from nodekit.fields import ConcatConv2d
from nodekit.measure.gradients import Gradients


def blobs(n: int, seed: int) -> TensorDataset:
    """Two Gaussian blobs in the plane, centred at ±(3, 3), labels 0/1."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) + 3.0 * (2 * y[:, None] - 1)
    return TensorDataset(x, y)


def blob_classifier(seed: int = 0) -> nn.Module:
    """A 2 → 8 → 2 tanh MLP for :func:`blobs`, initialised from ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))


def images(n: int = 16, seed: int = 0, classes: int = 3, size: int = 8) -> tuple[Tensor, Tensor]:
    """``n`` uniform random one-channel ``size``×``size`` images in [0, 1] and random labels."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g), torch.randint(0, classes, (n,), generator=g)


def small_mlp(seed: int = 0, classes: int = 3, hidden: int = 16, inputs: int = 64) -> nn.Module:
    """Flatten → Linear → tanh → Linear, initialised from ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, classes))


def small_cnn(seed: int = 0, classes: int = 2, width: int = 8) -> nn.Module:
    """A plain ReLU CNN for one-channel 8×8 images: two 3×3 convolutions, pooling, a linear head."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(width * 16, classes),
    )


def stripes(n: int, seed: int) -> TensorDataset:
    """Two classes of 8×8 images: bright left half or bright right half, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.35 * torch.rand(n, 1, 8, 8, generator=g)
    x[y == 0, :, :, :4] += 0.4
    x[y == 1, :, :, 4:] += 0.4
    return TensorDataset(x.clamp(0, 1), y)


def train(model: nn.Module, data: TensorDataset, *, epochs: int = 10, lr: float = 1e-2,
          batch_size: int = 32, seed: int = 0) -> nn.Module:
    """Fit ``model`` with Adam on the cross-entropy for a few epochs (seconds on one thread); eval mode."""
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model.eval()


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Fraction of ``x`` that ``model`` classifies as ``y``."""
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def digits() -> tuple[TensorDataset, TensorDataset]:
    """scikit-learn's 8×8 handwritten digits (1,797 images, bundled with the package: no download),
    pixels scaled to [0, 1]: the first 1,000 for training, the next 200 for testing."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32)[:, None] / 16
    y = torch.tensor(bunch.target, dtype=torch.long)
    return TensorDataset(x[:1000], y[:1000]), TensorDataset(x[1000:1200], y[1000:1200])


@functools.cache
def digits_cnn() -> nn.Module:
    """:func:`small_cnn` (width 8) trained for 15 epochs on :func:`digits` (about 98 % clean test
    accuracy, a few seconds on one thread); trained once per test session. Do not modify it."""
    return train(small_cnn(0, classes=10, width=8), digits()[0], epochs=15)


# ------------------------------------------------------------------ gradient problems (float64)

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



# ------------------------------------------------------------------ IDX files and data roots

IDX_NAMES = {
    "train-images-idx3-ubyte": (12, 28, 28),
    "train-labels-idx1-ubyte": (12,),
    "t10k-images-idx3-ubyte": (5, 28, 28),
    "t10k-labels-idx1-ubyte": (5,),
}



@pytest.fixture(autouse=True)
def data_root(tmp_path, monkeypatch) -> Path:
    """Every test gets an empty data root and no Debian Fashion-MNIST."""
    root = tmp_path / "data"
    monkeypatch.setenv("NODEKIT_DATA", str(root))
    monkeypatch.setattr(data.images, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian-package")
    return root



def make_idx_set(directory: Path, seed: int = 0, gz: bool = True) -> dict[str, np.ndarray]:
    """Write four small MNIST-shaped IDX files into ``directory``; return their arrays by file stem."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for stem, shape in IDX_NAMES.items():
        high = 10 if "labels" in stem else 256
        arrays[stem] = rng.integers(0, high, size=shape, dtype=np.uint8)
        write_idx(directory / (stem + (".gz" if gz else "")), arrays[stem])
    return arrays

