"""Training loop with progress bars, checkpoints keyed by the configuration, and resume.

``fit`` saves a checkpoint after every epoch under ``cache_dir()/<name>-<key>/``; the key
hashes everything that determines the result (configuration, architecture, data). Running
the same ``fit`` again resumes an interrupted run, or loads the finished model at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .models.ode_block import backward_nfe, forward_nfe, ode_blocks
from .provenance import REPO_ROOT

LossFn = Callable[[Tensor, Tensor], Tensor]
Predict = Callable[[Tensor], Tensor]
BatchTransform = Callable[[nn.Module, Tensor, Tensor, int, torch.Generator], Tensor]
"""``transform(model, x, y, epoch, generator) -> x``: replaces a training batch's inputs
(data augmentation, adversarial examples); ``generator`` is seeded by (seed, epoch)."""
Regularizer = Callable[[nn.Module, Tensor, Tensor, int], Tensor]
"""``regularizer(model, x, y, epoch) -> scalar`` added to the loss of every training batch."""


def argmax_prediction(outputs: Tensor) -> Tensor:
    """Class predictions from logits (the default of :func:`fit` and :func:`evaluate`)."""
    return outputs.argmax(dim=1)


def sign_prediction(outputs: Tensor) -> Tensor:
    """±1 predictions from real-valued outputs, for targets in {-1, +1} (regression onto ±1)."""
    return torch.where(outputs >= 0, 1.0, -1.0).to(outputs.dtype)


def cache_dir() -> Path:
    """Where trained models are kept: ``$NODEKIT_CACHE`` or ``<repo>/_build/cache``."""
    return Path(os.environ.get("NODEKIT_CACHE", REPO_ROOT / "_build" / "cache"))


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (Adam; learning rate multiplied by ``lr_gamma`` at each milestone)."""

    epochs: int
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    seed: int = 0


@dataclass
class History:
    """Per-epoch record of a training run, with the loss and forward NFE of every batch.

    ``backward_nfe`` / ``batch_backward_nfe`` count the adjoint's backward evaluations (0 for
    models without adjoint ODE blocks); runs cached before they were recorded leave them shorter.
    """

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    forward_nfe: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    batch_forward_nfe: list[int] = field(default_factory=list)
    backward_nfe: list[float] = field(default_factory=list)
    batch_backward_nfe: list[int] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)


def dataset_fingerprint(dataset: Dataset) -> str:
    """Cheap identity of a data set: its size and its first and last examples."""
    digest = hashlib.sha256(str(len(dataset)).encode())
    for i in (0, len(dataset) - 1):
        for item in dataset[i]:
            digest.update(torch.as_tensor(item).cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def run_key(name: str, model: nn.Module, config: Any, **data: str) -> str:
    """Hash of everything that fixes a training run, to name its cache entry.

    That is the run's ``name``, its ``config`` (a dataclass), the architecture (``repr``,
    parameter shapes and dtypes), the initial weights, and ``data``: one fingerprint string per
    data source (e.g. ``train=dataset_fingerprint(train)``). Call it before training starts.
    """
    weights = hashlib.sha256()
    for value in model.state_dict().values():
        weights.update(value.detach().cpu().numpy().tobytes())
    spec = {
        "name": name,
        "config": asdict(config),
        "model": repr(model),
        "parameters": [[list(p.shape), str(p.dtype)] for p in model.parameters()],
        "initial_weights": weights.hexdigest(),
        "data": data,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


@torch.no_grad()
def evaluate(
    model: nn.Module, dataset: Dataset, device: torch.device | str = "cpu", batch_size: int = 500,
    predict: Predict = argmax_prediction,
) -> float:
    """Accuracy of ``predict(model(x))`` against the targets; the model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    correct = 0
    for x, y in DataLoader(dataset, batch_size=batch_size):
        correct += (predict(model(x.to(device))).cpu() == y).sum().item()
    model.train(was_training)
    return correct / len(dataset)


def fit(
    model: nn.Module,
    train: Dataset,
    test: Dataset,
    config: TrainConfig,
    *,
    name: str,
    device: torch.device | str = "cpu",
    loss_fn: LossFn = F.cross_entropy,
    predict: Predict = argmax_prediction,
    use_cache: bool = True,
    progress: bool = True,
    batch_transform: BatchTransform | None = None,
    regularizer: Regularizer | None = None,
) -> History:
    """Train ``model`` in place with Adam on ``train``, evaluating on ``test`` after every epoch.

    Accuracy counts ``predict(outputs) == targets`` (class argmax by default; use
    :func:`sign_prediction` with a regression ``loss_fn`` onto ±1 targets). Returns the
    :class:`History`. ``loss_fn`` and ``predict`` are not part of the cache key: give runs that
    differ in them different names. With ``use_cache`` a finished run is loaded, not retrained,
    and an interrupted one resumes from its last completed epoch.

    Optional hooks (not part of the cache key either: name such runs differently):
    ``batch_transform(model, x, y, epoch, generator)`` returns the inputs to train on in place of
    ``x`` (Gaussian augmentation, adversarial training; its random draws should come from
    ``generator``, seeded by (seed, epoch), so resumed runs see the same batches);
    ``regularizer(model, x, y, epoch)`` is added to the loss (e.g. TisODE's steady-state term),
    evaluated on the transformed inputs. The reported training loss includes the regulariser.
    """
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.lr_milestones), config.lr_gamma)
    history = History()
    key = run_key(name, model, config, train=dataset_fingerprint(train), test=dataset_fingerprint(test))
    path = cache_dir() / f"{name}-{key}" / "checkpoint.pt"
    if use_cache and path.exists():
        state = torch.load(path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = History(**state["history"])

    bar = tqdm(
        total=config.epochs, initial=history.epochs, desc=name, unit="epoch",
        disable=not progress, mininterval=1.0, dynamic_ncols=True,
    )
    for epoch in range(history.epochs, config.epochs):
        start = time.perf_counter()
        # Shuffling depends only on (seed, epoch), so a resumed run sees the same batches.
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        loader = DataLoader(train, batch_size=config.batch_size, shuffle=True, generator=generator)
        model.train()
        if batch_transform is not None:
            transform_rng = torch.Generator(device=device).manual_seed(config.seed * 100_003 + epoch + 7_919)
        total_loss, correct, seen, nfe, nfe_back = 0.0, 0, 0, 0.0, 0.0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            if batch_transform is not None:
                x = batch_transform(model, x, y, epoch, transform_rng).detach()
                model.train()
            optimizer.zero_grad(set_to_none=True)
            logits = model(x)
            batch_nfe = forward_nfe(model)
            nfe += batch_nfe
            loss = loss_fn(logits, y)
            if regularizer is not None:
                loss = loss + regularizer(model, x, y, epoch)
            loss.backward()
            batch_backward = backward_nfe(model)
            nfe_back += batch_backward
            optimizer.step()
            history.batch_loss.append(loss.item())
            history.batch_forward_nfe.append(batch_nfe)
            history.batch_backward_nfe.append(batch_backward)
            total_loss += loss.item() * len(y)
            correct += (predict(logits) == y).sum().item()
            seen += len(y)
        scheduler.step()
        history.train_loss.append(total_loss / seen)
        history.train_accuracy.append(correct / seen)
        history.test_accuracy.append(evaluate(model, test, device, predict=predict))
        history.forward_nfe.append(nfe / len(loader) if ode_blocks(model) else 0.0)
        history.backward_nfe.append(nfe_back / len(loader))
        history.seconds.append(time.perf_counter() - start)
        if use_cache:
            save_checkpoint(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "scheduler": scheduler.state_dict(), "history": asdict(history)})
        bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}", test_acc=f"{history.test_accuracy[-1]:.3f}")
        bar.update(1)
    bar.close()
    return history


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to a temporary file and rename it, so a crash never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
