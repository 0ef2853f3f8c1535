"""The gradient-masking audit: per-example outcomes under many attacks, and their worst case.

An accuracy under one white-box attack is an upper bound on robustness; gradient masking (a
solver's or a saturating layer's vanishing or noisy gradients) makes that bound loose. The audit
therefore keeps, per test example, whether the model is still right under every attack
(:func:`correct_under`) — more PGD steps, restarts, gradients from a fixed-step copy of the model
(:func:`fixed_step_copy`, BPDA-style), transfer from other models, gradient-free attacks — and
reports the worst case (:func:`worst_case`): an example counts as robust only if no attack fooled it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from ..attacks import Attack
from ..models.modes import eval_mode
from ..models.ode_block import ode_blocks, with_solver

__all__ = ["audit", "correct_under", "fixed_step_copy", "worst_case"]


def correct_under(
    model: nn.Module, x: Tensor, y: Tensor, attack: Attack | None = None, *, source: nn.Module | None = None,
    batch_size: int = 100,
) -> Tensor:
    """Per example, whether ``model`` classifies the ``attack``-perturbed input correctly (a bool
    tensor); with ``source`` the perturbation is crafted on ``source`` (transfer / BPDA-style).
    Without ``attack``: clean correctness. Each batch gets the attack's seed offset by its index."""
    crafter = source if source is not None else model
    out = []
    with eval_mode(model, crafter):
        for i, (xb, yb) in enumerate(DataLoader(TensorDataset(x, y), batch_size=batch_size)):
            x_adv = xb if attack is None else attack.for_batch(i)(crafter, xb, yb)
            with torch.no_grad():
                out.append(model(x_adv).argmax(1) == yb)
    return torch.cat(out)


def fixed_step_copy(model: nn.Module, method: str = "rk4", step_size: float = 0.5) -> nn.Module:
    """A copy of ``model`` whose ODE blocks use the fixed-step ``method`` (same weights), to craft
    attacks whose gradients do not go through the adaptive solver's step-size control."""
    if not ode_blocks(model):
        raise ValueError("fixed_step_copy needs a model with at least one ODEBlock")
    return with_solver(copy.deepcopy(model), method, step_size=step_size)


def worst_case(outcomes: Mapping[str, Tensor]) -> Tensor:
    """Per example, correct under every attack of ``outcomes`` (name → per-example bools)."""
    if not outcomes:
        raise ValueError("worst_case needs at least one attack's outcomes")
    lengths = {len(v) for v in outcomes.values()}
    if len(lengths) != 1:
        raise ValueError(f"outcomes cover different numbers of examples: { {k: len(v) for k, v in outcomes.items()} }")
    return torch.stack([v.bool() for v in outcomes.values()]).all(0)


def audit(
    model: nn.Module, x: Tensor, y: Tensor, attacks: Mapping[str, Attack | tuple[Attack, nn.Module]],
    batch_size: int = 100, progress: bool = True,
) -> dict[str, Tensor]:
    """Per-example outcomes of ``model`` under every attack of ``attacks`` (name → attack, or
    (attack, source model) for a transfer / BPDA-style attack), plus ``"clean"``."""
    out = {"clean": correct_under(model, x, y, batch_size=batch_size)}
    for name, spec in tqdm(attacks.items(), desc="audit", unit="attack", disable=not progress, leave=False):
        attack, source = spec if isinstance(spec, tuple) else (spec, None)
        out[name] = correct_under(model, x, y, attack, source=source, batch_size=batch_size)
    return out
