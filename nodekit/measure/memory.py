"""Peak memory of a piece of work, measured in a fresh Python process.

PyTorch allocates outside Python's allocator, so ``tracemalloc`` does not see tensors; the
operating system's peak resident set size (RSS) does. On Linux the peak is reset to the current
RSS just before the work (``/proc/self/clear_refs``) and read back as ``VmHWM``; elsewhere it is
``getrusage``'s ``ru_maxrss``. A fresh process per measurement keeps one workload's peak from
hiding the next one's::

    result = peak_memory("nodekit.measure.gradients:memory_workload", route="adjoint", steps=100)
    result.extra_mb   # peak RSS during the work minus the RSS just before it

The target ``"module:function"`` is called with the keyword arguments in the child process and
must return a zero-argument callable, the work to measure; the set-up it does first (building
models, inputs) counts towards the baseline, not the work.

:func:`saved_tensor_bytes` counts, in this process and exactly, the bytes autograd keeps for the
backward pass of a forward computation: the activation memory that backpropagation through a
solver grows with the number of steps and an adjoint method does not.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.classifiers import mnist_model

__all__ = ["MemoryResult", "peak_memory", "saved_tensor_bytes"]


@dataclass(frozen=True)
class MemoryResult:
    """Resident memory of the child process in MiB: before the work, and its peak during it."""

    baseline_mb: float
    peak_mb: float
    seconds: float

    @property
    def extra_mb(self) -> float:
        """The memory the work itself needed, in MiB (the peak minus the baseline)."""
        return max(self.peak_mb - self.baseline_mb, 0.0)


def _status_mb(field: str) -> float | None:
    """A ``kB`` field of Linux's ``/proc/self/status`` in MiB, or None where there is none."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        pass
    return None


def _reset_peak() -> None:
    """Reset Linux's peak RSS of this process (VmHWM) to its current RSS, where allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def _peak_rss_mb() -> float:
    """Peak RSS: Linux's VmHWM; elsewhere ``ru_maxrss``. (``ru_maxrss`` alone is not enough on
    Linux: it keeps the parent's RSS from before the child's ``exec``, so a child of a large
    process would report the parent's size.)"""
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def peak_memory(target: str, timeout: float = 600.0, **kwargs: Any) -> MemoryResult:
    """Run ``target(**kwargs)()`` in a fresh Python process and return its memory use.

    ``kwargs`` must be JSON-serialisable. The child uses as many CPU threads as the caller's
    torch (a child with more threads than the caller chose is many times slower on a busy
    machine). A failure in the child is raised here as a ``RuntimeError`` carrying the child's
    error output.
    """
    if ":" not in target:
        raise ValueError(f"target must look like 'package.module:function', got {target!r}")
    command = [sys.executable, "-m", "nodekit.measure.memory", target, json.dumps(kwargs)]
    env = dict(os.environ)
    if "torch" in sys.modules:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(sys.modules["torch"].get_num_threads())
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement of {target}({kwargs}) failed in the child process:\n{done.stderr[-2000:]}")
    return MemoryResult(**json.loads(done.stdout.strip().splitlines()[-1]))


def _measure_here(target: str, kwargs: dict[str, Any]) -> MemoryResult:
    module_name, function_name = target.split(":")
    work = getattr(importlib.import_module(module_name), function_name)(**kwargs)
    _reset_peak()
    baseline = _status_mb("VmRSS") or _peak_rss_mb()
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    return MemoryResult(baseline_mb=baseline, peak_mb=_peak_rss_mb(), seconds=seconds)


def training_step_workload(
    name: str, width: int, tol: float, state_path: str, batch_path: str, threads: int = 1
) -> Callable[[], None]:
    """One training step (forward, cross-entropy, backward) of the MNIST model ``name``
    (:func:`~nodekit.models.classifiers.mnist_model`) with the weights in ``state_path`` on the
    batch ``(x, y)`` in ``batch_path``, on ``threads`` CPU threads; returned as a zero-argument
    callable for :func:`peak_memory`. The model is built and one-off costs paid first."""
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
            "nodekit.measure.memory:training_step_workload",
            name=name, width=width, tol=tol, state_path=str(state_path), batch_path=str(batch_path),
            threads=torch.get_num_threads(),
        )
    return result.extra_mb


if __name__ == "__main__":
    result = _measure_here(sys.argv[1], json.loads(sys.argv[2]))
    print(json.dumps({"baseline_mb": result.baseline_mb, "peak_mb": result.peak_mb, "seconds": result.seconds}))


def saved_tensor_bytes(forward: Callable[[], Tensor]) -> int:
    """Bytes of the distinct tensor storages autograd saves for backward while ``forward()`` runs
    (counted with ``torch.autograd.graph.saved_tensors_hooks``; a storage saved twice counts once).
    Deterministic: the activation memory of a forward pass, without the allocator's noise."""
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()
    return sum(storages.values())
