"""Two-dimensional toy densities with samplers *and* exact log-densities.

The four distributions follow the toy data of Grathwohl et al. (2019, FFJORD's
``lib/toy_data.py``) in shape and scale, but every one here also has a log-density we can
evaluate (in closed form, or by a 1-D quadrature for the moons), so a trained flow can be
compared with the truth: target heatmaps, and the true data NLL as a reference.

>>> moons = toy_density("moons")
>>> x = moons.sample(1000, generator=torch.Generator().manual_seed(0))
>>> moons.log_prob(x).shape
torch.Size([1000])
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "Checkerboard",
    "DensityGrid",
    "EightGaussians",
    "Rings",
    "ToyDensity",
    "TOY_DENSITIES",
    "TwoMoons",
    "entropy_estimate",
    "evaluate_on_grid",
    "toy_density",
]

LOG_2PI = math.log(2 * math.pi)


def _check_points(x: Tensor) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"points must be a tensor of shape (n, 2), got {shape}; stack them as torch.stack([x, y], dim=1)")
    return x if x.is_floating_point() else x.float()


def _check_count(n: int) -> int:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of samples must be a positive int, got {n!r}")
    return n


class ToyDensity(ABC):
    """A distribution on the plane: ``sample(n)`` draws points, ``log_prob(x)`` evaluates them."""

    name: str = ""

    @abstractmethod
    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor: ...

    @abstractmethod
    def _log_prob(self, x: Tensor) -> Tensor: ...

    def sample(self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
        """``n`` independent points, shape ``(n, 2)``; pass a seeded ``generator`` to reproduce them."""
        return self._sample(_check_count(n), generator).to(dtype)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density (nats) of each row of ``x`` (shape ``(n, 2)``), computed in float64."""
        x = _check_points(x)
        return self._log_prob(x.double()).to(x.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _normal(n: int, generator: torch.Generator | None) -> Tensor:
    return torch.randn(n, 2, generator=generator, dtype=torch.float64)


def _uniform(n: int, generator: torch.Generator | None) -> Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float64)


def _choice(n: int, k: int, generator: torch.Generator | None) -> Tensor:
    return torch.randint(k, (n,), generator=generator)


class EightGaussians(ToyDensity):
    """Equal mixture of 8 isotropic Gaussians (std ``0.5/1.414``) on a circle of radius ``4/1.414``."""

    name = "8gaussians"
    radius = 4.0 / 1.414
    std = 0.5 / 1.414

    def __init__(self) -> None:
        angles = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
        self.centers = self.radius * torch.stack([angles.cos(), angles.sin()], dim=1)

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        return self.centers[_choice(n, 8, generator)] + self.std * _normal(n, generator)

    def _log_prob(self, x: Tensor) -> Tensor:
        sq = ((x[:, None, :] - self.centers[None]) ** 2).sum(-1)
        log_comp = -sq / (2 * self.std**2) - LOG_2PI - 2 * math.log(self.std)
        return torch.logsumexp(log_comp, dim=1) - math.log(8)


class Rings(ToyDensity):
    """Four concentric rings (radii 3, 2.25, 1.5, 0.75; equal weight) blurred by N(0, 0.08²)."""

    name = "rings"
    radii = (3.0, 2.25, 1.5, 0.75)
    std = 0.08

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        radius = torch.tensor(self.radii, dtype=torch.float64)[_choice(n, 4, generator)]
        angle = 2 * math.pi * _uniform(n, generator)
        ring = radius[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1)
        return ring + self.std * _normal(n, generator)

    def _log_prob(self, x: Tensor) -> Tensor:
        # A circle of radius R blurred by N(0, s² I) has density
        # exp(-(r² + R²) / 2s²) I0(rR / s²) / (2π s²); i0e keeps the Bessel factor finite.
        r = x.norm(dim=1, keepdim=True)
        big_r = torch.tensor(self.radii, dtype=torch.float64)[None]
        s2 = self.std**2
        arg = r * big_r / s2
        log_ring = -((r - big_r) ** 2) / (2 * s2) + torch.log(torch.special.i0e(arg)) - LOG_2PI - math.log(s2)
        return torch.logsumexp(log_ring, dim=1) - math.log(4)


class TwoMoons(ToyDensity):
    """Two interleaved half circles (scikit-learn's ``make_moons``, noise 0.1), scaled by 2.

    The angle along each moon is uniform here (``make_moons`` spaces it evenly), which is the
    same distribution for large samples. The log-density integrates the Gaussian blur over the
    angle by Gauss–Legendre quadrature (96 nodes per moon: accurate to ~1e-11 nats).
    """

    name = "moons"
    std = 0.2
    quadrature_points = 96

    def _arcs(self, angle: Tensor) -> tuple[Tensor, Tensor]:
        outer = torch.stack([2 * angle.cos() - 1, 2 * angle.sin() - 0.2], dim=-1)
        inner = torch.stack([1 - 2 * angle.cos(), 0.8 - 2 * angle.sin()], dim=-1)
        return outer, inner

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        outer, inner = self._arcs(math.pi * _uniform(n, generator))
        which = _choice(n, 2, generator).bool()[:, None]
        return torch.where(which, inner, outer) + self.std * _normal(n, generator)

    def _log_prob(self, x: Tensor) -> Tensor:
        nodes, weights = np.polynomial.legendre.leggauss(self.quadrature_points)
        angle = torch.from_numpy((nodes + 1) * (math.pi / 2))
        arcs = torch.cat(self._arcs(angle), dim=0)  # (2m, 2)
        # Each moon has mass 1/2 spread uniformly over [0, π]: quadrature weight w_i / 4.
        log_w = torch.from_numpy(np.log(weights / 4)).repeat(2)[None]
        s2 = self.std**2
        out = []
        for chunk in x.split(8192):
            sq = ((chunk[:, None, :] - arcs[None]) ** 2).sum(-1)
            out.append(torch.logsumexp(log_w - sq / (2 * s2), dim=1))
        return torch.cat(out) - LOG_2PI - math.log(s2)


class Checkerboard(ToyDensity):
    """Uniform on the 8 dark squares (side 2) of a 4×4 checkerboard covering [-4, 4]²."""

    name = "checkerboard"

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        x1 = 4 * _uniform(n, generator) - 2
        x2 = _uniform(n, generator) - 2 * _choice(n, 2, generator) + torch.floor(x1) % 2
        return 2 * torch.stack([x1, x2], dim=1)

    def _log_prob(self, x: Tensor) -> Tensor:
        inside = (x.abs() < 4).all(dim=1)
        cell = torch.floor(x / 2)
        dark = ((cell[:, 0] + cell[:, 1]) % 2) == 0
        log_density = torch.full_like(x[:, 0], -math.log(32.0))
        return torch.where(inside & dark, log_density, torch.full_like(log_density, -math.inf))


TOY_DENSITIES: dict[str, type[ToyDensity]] = {
    cls.name: cls for cls in (TwoMoons, Rings, Checkerboard, EightGaussians)
}


def toy_density(name: str) -> ToyDensity:
    """The toy density called ``name``: one of ``moons``, ``rings``, ``checkerboard``, ``8gaussians``."""
    if name not in TOY_DENSITIES:
        raise ValueError(f"unknown toy density {name!r}; choose one of: {', '.join(TOY_DENSITIES)}")
    return TOY_DENSITIES[name]()


def entropy_estimate(density: ToyDensity, n: int = 200_000, seed: int = 0) -> tuple[float, float]:
    """Monte Carlo estimate of the entropy ``E[-log p(x)]`` (nats) and its standard error.

    The entropy is the lowest expected NLL any model can reach on data from ``density``: the
    reference column when comparing a trained flow's test NLL.
    """
    x = density.sample(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    nll = -density.log_prob(x)
    return float(nll.mean()), float(nll.std() / math.sqrt(n))


@dataclass
class DensityGrid:
    """A log-density evaluated at the centres of a square grid of cells over ``[-extent, extent]²``."""

    x: Tensor  # (resolution,) cell centres, shared by both axes
    log_prob: Tensor  # (resolution, resolution); row i is y = x[i], column j is x = x[j]
    extent: float

    @property
    def cell_area(self) -> float:
        return (2 * self.extent / len(self.x)) ** 2

    @property
    def density(self) -> Tensor:
        return self.log_prob.exp()

    @property
    def mass(self) -> float:
        """Midpoint-rule integral of the density over the grid's square (≈1 if little lies outside)."""
        return float(self.density.sum()) * self.cell_area


def evaluate_on_grid(
    log_prob: Callable[[Tensor], Tensor],
    extent: float = 5.0,
    resolution: int = 150,
    chunk: int = 10_000,
    dtype: torch.dtype = torch.float32,
) -> DensityGrid:
    """Evaluate ``log_prob`` (a function of points ``(n, 2)``) on a ``resolution²`` grid of cells.

    The points (of ``dtype``) are passed in chunks of at most ``chunk`` rows, under ``torch.no_grad``.
    """
    if not (extent > 0 and resolution >= 2):
        raise ValueError(f"need extent > 0 and resolution >= 2, got extent={extent}, resolution={resolution}")
    half_cell = extent / resolution
    x = torch.linspace(-extent + half_cell, extent - half_cell, resolution, dtype=dtype)
    yy, xx = torch.meshgrid(x, x, indexing="ij")
    points = torch.stack([xx.flatten(), yy.flatten()], dim=1)
    with torch.no_grad():
        values = torch.cat([log_prob(part).detach().cpu() for part in points.split(chunk)])
    return DensityGrid(x=x, log_prob=values.reshape(resolution, resolution), extent=extent)
