"""Test-time tolerance sweeps: one trained ODE-net evaluated at several solver tolerances
(accuracy, forward NFE, inference time), its own tolerances restored afterwards."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..models.modes import eval_mode
from ..models.ode_block import forward_nfe, ode_blocks

__all__ = ["ToleranceResult", "tolerance_sweep"]


@dataclass(frozen=True)
class ToleranceResult:
    """Test accuracy, mean forward NFE per batch and total inference seconds at one tolerance."""

    tol: float
    accuracy: float
    nfe: float
    seconds: float


@torch.no_grad()
def tolerance_sweep(
    model: nn.Module,
    dataset: Dataset,
    tolerances: Sequence[float],
    device: torch.device | str = "cpu",
    batch_size: int = 500,
) -> list[ToleranceResult]:
    """Evaluate ``model`` on ``dataset`` with rtol = atol = ``tol`` in all its ODE blocks, for
    each tolerance. The blocks' tolerances and the model's train/eval mode are restored."""
    blocks = ode_blocks(model)
    if not blocks:
        raise ValueError("tolerance_sweep needs a model with at least one ODEBlock")
    saved = [(b.rtol, b.atol) for b in blocks]
    results = []
    try:
        with eval_mode(model):
            for tol in tolerances:
                for b in blocks:
                    b.rtol = b.atol = float(tol)
                correct, nfe, batches = 0, 0, 0
                start = time.perf_counter()
                for x, y in DataLoader(dataset, batch_size=batch_size):
                    logits = model(x.to(device))
                    correct += (logits.argmax(dim=1).cpu() == y).sum().item()
                    nfe += forward_nfe(model)
                    batches += 1
                if torch.device(device).type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start
                results.append(ToleranceResult(float(tol), correct / len(dataset), nfe / batches, seconds))
    finally:
        for b, (rtol, atol) in zip(blocks, saved):
            b.rtol, b.atol = rtol, atol
    return results
