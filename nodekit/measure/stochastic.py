"""Stochastic stability and solvers: closed forms to set simulations against.

* :func:`growth_rates` — ``(1/t) log‖z_t‖`` along sampled paths, the quantity of almost-sure
  exponential stability (seed 003, Definition 1: stable when its limsup is negative);
* :func:`gbm_rate` — its exact limit for geometric Brownian motion ``dz = λz dt + σz dW``:
  ``λ − σ²/2`` read as Itô, ``λ`` read as Stratonovich;
* :func:`liu_bound` — Liu et al.'s bound ``−(σ²/2 − L)`` for ``dz = f dt + σz dW`` (Itô) with
  ``‖f(z)‖ ≤ L‖z‖``;
* :func:`reversible_heun_growth` — the factor by which reversible Heun's parasitic mode grows per
  step on ``z' = λz``: ``|x| + √(x² + 1)`` for real ``x = hλ``, so > 1 for every decaying ``λ``;
* :func:`dropout_noise_moments` — exact mean and variance of dropout's noise ``γ/p − 1``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..models.sde import keep_to_sigma

__all__ = ["dropout_noise_moments", "gbm_rate", "growth_rates", "liu_bound", "reversible_heun_growth"]


def growth_rates(paths: Tensor, ts: Tensor) -> Tensor:
    """``log‖z_t‖ / t`` for paths ``(len(ts), batch, dim)`` at every time ``t > 0`` (the first time,
    where ``t`` may be 0, is dropped): shape ``(len(ts) − 1, batch)``."""
    if paths.dim() != 3 or len(paths) != len(ts):
        raise ValueError(f"paths must be (len(ts), batch, dim), got {tuple(paths.shape)} for {len(ts)} times")
    if not bool((ts[1:] > 0).all()):
        raise ValueError("growth_rates needs times after the first one to be > 0")
    return paths[1:].norm(dim=2).log() / ts[1:, None]


def gbm_rate(lam: float, sigma: float, sde_type: str = "ito") -> float:
    """The almost-sure limit of ``(1/t) log|z_t|`` for ``dz = λz dt + σz dW``: the solution is
    ``z₀ exp((λ − σ²/2)t + σW_t)`` (Itô) or ``z₀ exp(λt + σW_t)`` (Stratonovich), and ``W_t/t → 0``."""
    if sde_type == "ito":
        return lam - sigma**2 / 2
    if sde_type == "stratonovich":
        return lam
    raise ValueError(f"unknown sde_type {sde_type!r}; use 'ito' or 'stratonovich'")


def liu_bound(lipschitz: float, sigma: float) -> float:
    """``−(σ²/2 − L)``: Liu et al.'s almost-sure bound on ``limsup (1/t) log‖z_t‖`` for the Itô SDE
    ``dz = f dt + σz dW`` when ``‖f(z)‖ ≤ L‖z‖`` (a Lipschitz constant alone does not suffice: a
    constant ``f ≠ 0`` is 0-Lipschitz and keeps ``z`` away from 0)."""
    return -(sigma**2 / 2 - lipschitz)


def reversible_heun_growth(x: complex | float) -> float:
    """Largest modulus of the roots of ``μ² − 2xμ − 1 = 0``: the amplification of reversible Heun
    (Kidger et al. 2021) per step on ``z' = λz`` with ``x = hλ``. The roots multiply to −1, so one
    of them has modulus ≥ 1 for every ``x``, with equality only on the imaginary segment
    ``[−i, i]``; for real ``x < 0`` (a decaying mode) it is ``|x| + √(x² + 1)`` > 1."""
    x = complex(x)
    root = (x * x + 1) ** 0.5
    return max(abs(x + root), abs(x - root))


def dropout_noise_moments(keep: float) -> tuple[float, float]:
    """Exact mean and variance of ``γ/p − 1``, ``γ ~ Bernoulli(p)``: ``0`` and ``(1 − p)/p``
    (summed over the two outcomes, not from a formula)."""
    keep_to_sigma(keep)  # validates keep
    outcomes = ((keep, 1 / keep - 1), (1 - keep, -1.0))
    mean = sum(p * v for p, v in outcomes)
    return mean, sum(p * (v - mean) ** 2 for p, v in outcomes)

