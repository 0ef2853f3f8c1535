"""Synthetic vector data for the expressivity chapter: the concentric spheres g_d and the 1-D flip.

Both return a ``TensorDataset(x, y)`` with float32 inputs ``x`` of shape (n, d) and float32
regression targets ``y`` of shape (n, 1) (values ±1 for :func:`concentric_spheres`), the
function values a model has to represent, as in Dupont et al. (2019).
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import TensorDataset

__all__ = ["concentric_spheres", "flip_1d"]


def _uniform_radii(n: int, d: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """Radii of points uniform in volume in the shell ``low <= r <= high`` of R^d."""
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return (low**d + u * (high**d - low**d)) ** (1.0 / d)


def _directions(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """Unit vectors uniform on the sphere S^{d-1} (random signs ±1 when d = 1)."""
    g = torch.randn(n, d, generator=generator, dtype=torch.float64)
    return g / g.norm(dim=1, keepdim=True)


def concentric_spheres(
    d: int, r1: float, r2: float, r3: float, n: int, *, inner_fraction: float = 0.25, seed: int = 0
) -> TensorDataset:
    """Samples of ``g_d``: −1 in the ball ``‖x‖ <= r1``, +1 in the shell ``r2 <= ‖x‖ <= r3``.

    ``round(inner_fraction * n)`` points lie in the ball and the rest in the shell, each uniform
    in volume. Dupont et al.'s toy set is ``concentric_spheres(2, 0.5, 1.0, 1.5, 2000)``
    (500 inner and 1500 outer points). Targets have shape (n, 1); the inner points come first.
    """
    if not (isinstance(d, int) and d >= 1):
        raise ValueError(f"dimension d must be an integer >= 1, got {d!r}")
    if not (0 < r1 < r2 < r3 and all(map(math.isfinite, (r1, r2, r3)))):
        raise ValueError(
            f"radii must satisfy 0 < r1 < r2 < r3 (ball, gap, shell), got r1={r1}, r2={r2}, r3={r3}; "
            "e.g. concentric_spheres(2, 0.5, 1.0, 1.5, 2000)"
        )
    if not 0.0 < inner_fraction < 1.0:
        raise ValueError(f"inner_fraction must lie strictly between 0 and 1, got {inner_fraction}")
    n_inner = round(inner_fraction * n)
    if not (isinstance(n, int) and 0 < n_inner < n):
        raise ValueError(
            f"n={n!r} with inner_fraction={inner_fraction} leaves a class empty; "
            "pass an integer n large enough for both the ball and the shell"
        )
    generator = torch.Generator().manual_seed(seed)
    radii = torch.cat([
        _uniform_radii(n_inner, d, 0.0, r1, generator),
        _uniform_radii(n - n_inner, d, r2, r3, generator),
    ])
    x = radii[:, None] * _directions(n, d, generator)
    y = torch.cat([-torch.ones(n_inner), torch.ones(n - n_inner)])[:, None]
    return TensorDataset(x.float(), y)


def flip_1d(n: int, *, noise: float = 0.0, seed: int = 0) -> TensorDataset:
    """``n`` points at ±1 (random signs, plus Gaussian noise of std ``noise``) with targets ``−x``.

    The map x ↦ −x reverses the order of the line, which no time-T map of an ODE on the line can.
    """
    if not (isinstance(n, int) and n >= 2):
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    if not noise >= 0.0:
        raise ValueError(f"noise must be a standard deviation >= 0, got {noise}")
    generator = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (n, 1), generator=generator).float() * 2 - 1
    x = signs + noise * torch.randn(n, 1, generator=generator)
    return TensorDataset(x, -x)
