"""Small helpers the chapters share for figures and tables: running means, mean ± std, phase portraits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["mean_std", "plot_phase_portrait", "smooth"]


def smooth(values: Sequence[float], window: int = 20) -> np.ndarray:
    """Running mean of ``values`` over ``window`` consecutive entries (``len - window + 1`` values);
    a series shorter than ``window`` gives its one mean, an empty one an empty array."""
    if not (isinstance(window, int) and window >= 1):
        raise ValueError(f"window must be an integer >= 1, got {window!r}")
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return values
    window = min(window, values.size)
    return np.convolve(values, np.ones(window) / window, mode="valid")


def mean_std(values: Sequence[float], fmt: str = "{:.3f}", scale: float = 1.0) -> str:
    """``"mean ± std"`` of ``values`` × ``scale`` (sample std, ddof 1); just the mean for one value."""
    v = scale * np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("mean_std() of no values")
    return f"{fmt.format(v.mean())} ± {fmt.format(v.std(ddof=1))}" if v.size > 1 else fmt.format(v.mean())


def plot_phase_portrait(
    ax: Any, field_fn: Callable[[Tensor], Tensor], lim: float = 2.5, density: float = 1.0, color: str = "C0",
    title: str = "",
) -> None:
    """Streamlines of the planar field ``field_fn(z)`` (``z`` of shape ``(n, 2)``) on ``[-lim, lim]²``."""
    grid = torch.linspace(-lim, lim, 25)
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        v = field_fn(zz).reshape(25, 25, 2)
    ax.streamplot(grid.numpy(), grid.numpy(), v[..., 0].numpy(), v[..., 1].numpy(), density=density, color=color,
                  linewidth=0.7, arrowsize=0.8)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title, xlabel="$z_1$", ylabel="$z_2$")
