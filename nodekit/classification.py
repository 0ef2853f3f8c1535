"""Measurements behind the classification chapter: test-time tolerance sweeps and the peak memory
of one training step of the MNIST models of :mod:`nodekit.models.mnist_nets`.

* :func:`tolerance_sweep` evaluates one trained ODE-net at several solver tolerances (accuracy,
  forward NFE, inference time), restoring the model's own tolerances afterwards;
* :func:`training_step_memory` measures the peak memory of one forward + backward pass of a
  model on a batch: on the CPU as peak RSS in a fresh process (:func:`nodekit.memory.peak_memory`,
  with :func:`training_step_workload` as the work), on a GPU with the CUDA allocator's statistics.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .memory import peak_memory
from .models.mnist_nets import mnist_model
from .models.ode_block import forward_nfe, ode_blocks

__all__ = ["ToleranceResult", "tolerance_sweep", "training_step_memory", "training_step_workload"]


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
    was_training = model.training
    model.eval()
    results = []
    try:
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
        model.train(was_training)
    return results


def training_step_workload(
    name: str, width: int, tol: float, state_path: str, batch_path: str, threads: int = 1
) -> Callable[[], None]:
    """One training step (forward, cross-entropy, backward) of the MNIST model ``name``
    (:func:`~nodekit.models.mnist_nets.mnist_model`) with the weights in ``state_path`` on the
    batch ``(x, y)`` in ``batch_path``, on ``threads`` CPU threads; returned as a zero-argument
    callable for :func:`nodekit.memory.peak_memory`. The model is built and one-off costs paid first."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = mnist_model(name, width, tol)
    model.load_state_dict(torch.load(state_path, weights_only=True))
    x, y = torch.load(batch_path, weights_only=True)
    F.cross_entropy(model(x[:2]), y[:2]).backward()  # warm-up: autograd engine, thread pools
    model.zero_grad(set_to_none=True)

    def work() -> None:
        F.cross_entropy(model(x), y).backward()

    return work


def training_step_memory(
    name: str, model: nn.Module, width: int, tol: float, x: Tensor, y: Tensor, device: torch.device | str = "cpu"
) -> float:
    """Peak memory (MiB) that one training step of ``model`` (an MNIST model called ``name``,
    of ``width`` channels) needs on the batch ``(x, y)``, above what was in use before it.

    CPU: peak RSS in a fresh process (with this process's number of torch threads), minus the RSS
    before the step (weights and data included in the baseline). CUDA: ``torch.cuda.max_memory_allocated`` during the step minus the memory
    allocated before it, in this process.
    """
    device = torch.device(device)
    if device.type == "cuda":
        model.zero_grad(set_to_none=True)
        x, y = x.to(device), y.to(device)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        F.cross_entropy(model(x), y).backward()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        model.zero_grad(set_to_none=True)
        return (peak - before) / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        state_path, batch_path = Path(tmp) / "state.pt", Path(tmp) / "batch.pt"
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, state_path)
        torch.save((x.cpu(), y.cpu()), batch_path)
        result = peak_memory(
            "nodekit.classification:training_step_workload",
            name=name, width=width, tol=tol, state_path=str(state_path), batch_path=str(batch_path),
            threads=torch.get_num_threads(),
        )
    return result.extra_mb
