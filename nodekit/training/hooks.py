"""Batch transforms for :func:`nodekit.training.loop.fit`: what a training batch is replaced by.

* :class:`GaussianAugmentation` — Gaussian noise whose σ (0–255 scale) is drawn per example from a
  set, as in Yan et al.'s release (σ ∈ {50, 75, 100});
* :class:`AdversarialTraining` — a fraction of each batch replaced by adversarial examples of the
  current model (FGSM or PGD from :mod:`nodekit.attacks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..attacks import Attack, check_inputs_in_range, gaussian_perturbation

__all__ = ["AdversarialTraining", "GaussianAugmentation"]


@dataclass(frozen=True)
class GaussianAugmentation:
    """Add ``σ/255 · N(0, 1)`` noise to every training image, σ drawn uniformly per example from
    ``sigmas`` (0–255 pixel scale), and clip to ``clip``."""

    sigmas: tuple[float, ...] = (50.0, 75.0, 100.0)
    clip: tuple[float, float] = (0.0, 1.0)
    pixel_scale: float = 255.0

    def __post_init__(self) -> None:
        if not self.sigmas or min(self.sigmas) < 0:
            raise ValueError(f"sigmas must be a non-empty tuple of numbers >= 0, e.g. (50, 75, 100); got {self.sigmas}")

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, epoch: int, generator: torch.Generator) -> Tensor:
        check_inputs_in_range(x, self.clip, "GaussianAugmentation")
        choice = torch.randint(0, len(self.sigmas), (len(x),), generator=generator, device=x.device)
        sigma = torch.tensor(self.sigmas, dtype=x.dtype, device=x.device)[choice] / self.pixel_scale
        return gaussian_perturbation(x, sigma.view(-1, *([1] * (x.dim() - 1))), generator, self.clip)


@dataclass(frozen=True)
class AdversarialTraining:
    """Replace a random ``fraction`` of each batch by ``attack``'s adversarial examples for the
    current model (``fraction=0.5`` is Goodfellow et al.'s equal mix of clean and adversarial loss)."""

    attack: Attack
    fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, epoch: int, generator: torch.Generator) -> Tensor:
        n = max(1, round(self.fraction * len(x)))
        idx = torch.randperm(len(x), generator=generator, device=x.device)[:n]
        x = x.clone()
        x[idx] = self.attack(model, x[idx], y[idx])
        return x
