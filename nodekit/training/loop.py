"""The training engine: one loop for every model of the book, cached and resumable.

:func:`train_model` optimises a model with Adam on a :class:`Task` (what to train on and how to score
it: :class:`SupervisedTask` for classifiers and regressors, :class:`~nodekit.training.tasks.DensityTask`
for CNFs, :class:`~nodekit.training.tasks.SnippetTask` for learning dynamics from trajectories). It
shows a progress bar, saves a checkpoint after every epoch under the run's cache key
(:mod:`nodekit.training.cache`), resumes an interrupted run from its last epoch, and loads a
finished one at once. :func:`fit` is the supervised case in one call.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..errors import SolverError
from ..models.modes import eval_mode
from ..models.ode_block import backward_nfe, forward_nfe
from .cache import (
    checkpoint_path,
    code_fingerprint,
    dataset_fingerprint,
    describe,
    load_checkpoint,
    run_key,
    save_checkpoint,
    validate_name,
)

RUNS: Counter[str] = Counter()
"""How the runs of this process ended: ``"trained"``, ``"resumed"`` (from a checkpoint) or
``"loaded"`` (finished in the cache); a chapter's provenance reports it."""

LossFn = Callable[[Tensor, Tensor], Tensor]
Predict = Callable[[Tensor], Tensor]
BatchTransform = Callable[[nn.Module, Tensor, Tensor, int, torch.Generator], Tensor]
"""``transform(model, x, y, epoch, generator) -> x``: replaces a training batch's inputs
(data augmentation, adversarial examples); ``generator`` is seeded by (seed, epoch)."""
Regularizer = Callable[[nn.Module, Tensor, Tensor, int], Tensor]
"""``regularizer(model, x, y, epoch) -> scalar`` added to the loss of every training batch."""

__all__ = [
    "History", "SupervisedTask", "Task", "TrainConfig", "argmax_prediction", "evaluate", "fit",
    "sign_prediction", "train_model",
]


def argmax_prediction(outputs: Tensor) -> Tensor:
    """Class predictions from logits (the default of :func:`fit` and :func:`evaluate`)."""
    return outputs.argmax(dim=1)


def sign_prediction(outputs: Tensor) -> Tensor:
    """±1 predictions from real-valued outputs, for targets in {-1, +1} (regression onto ±1)."""
    return torch.where(outputs >= 0, 1.0, -1.0).to(outputs.dtype)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings: Adam, learning rate multiplied by ``lr_gamma`` at each milestone
    epoch; ``seed`` fixes the order of the batches and every random draw of the task."""

    epochs: int
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.epochs, int) and self.epochs >= 0):
            raise ValueError(f"epochs must be an integer >= 0, got {self.epochs!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


@dataclass
class History:
    """Per-epoch record of a training run, and the loss and solver work of every batch.

    ``test_accuracy`` is filled by tasks that evaluate (supervised ones), ``train_accuracy`` by
    tasks that count correct predictions; ``backward_nfe`` counts the adjoint's backward
    evaluations (0 without adjoint solves).
    """

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    forward_nfe: list[float] = field(default_factory=list)
    backward_nfe: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    batch_forward_nfe: list[int] = field(default_factory=list)
    batch_backward_nfe: list[int] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)


@dataclass
class Step:
    """What a task returns for one batch: the loss to minimise and, if it classifies, how many of
    the ``count`` examples it got right."""

    loss: Tensor
    count: int
    correct: int | None = None


class Task(Protocol):
    """What a training run optimises. Every random draw comes from ``config.seed`` and the epoch,
    so that a resumed run sees exactly the batches an uninterrupted one would."""

    def fingerprint(self) -> dict[str, str]:
        """Strings that change whenever the task would train differently (data contents, hooks)."""

    def hooks(self) -> list[Any]:
        """The objects whose code the task runs (for the cache key's code fingerprint)."""

    def batches(self, model: nn.Module, epoch: int, config: TrainConfig, device: torch.device | str) -> Iterable[Any]:
        """The batches of ``epoch``, already on ``device`` (and in the model's dtype where they are drawn)."""

    def step(self, model: nn.Module, batch: Any, epoch: int) -> Step:
        """The loss of ``model`` on one batch (the engine then backpropagates and steps)."""

    def solver_cost(self, model: nn.Module) -> tuple[int, int]:
        """Forward and backward NFE of the last step (after its backward pass)."""

    def evaluate(self, model: nn.Module, device: torch.device | str) -> float | None:
        """Test accuracy after an epoch, or None."""


def train_model(
    model: nn.Module,
    task: Task,
    config: TrainConfig,
    *,
    name: str,
    device: torch.device | str = "cpu",
    use_cache: bool = True,
    progress: bool = True,
    unit: str = "epoch",
) -> History:
    """Train ``model`` in place on ``task`` with Adam and return the :class:`History`.

    With ``use_cache`` a finished run is loaded, not retrained, and an interrupted one resumes
    from its last completed epoch; the cache key (:func:`~nodekit.training.cache.run_key`) covers
    the configuration, architecture, initial weights, the task's data and hooks, and the code.
    A solver failure is re-raised with the epoch and batch at which it happened; the last
    completed epoch's checkpoint stays in place.
    """
    validate_name(name)
    model.to(device)
    key = run_key(name, model, config, task.fingerprint(), code_fingerprint([model, *task.hooks()]))
    path = checkpoint_path(name, key)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.lr_milestones), config.lr_gamma)
    history = History()
    if use_cache and path.exists():
        state = load_checkpoint(path, device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = History(**state["history"])
    RUNS["loaded" if history.epochs >= config.epochs else "resumed" if history.epochs else "trained"] += 1
    bar = tqdm(
        total=config.epochs, initial=history.epochs, desc=name, unit=unit,
        disable=not progress, mininterval=1.0, dynamic_ncols=True,
    )
    for epoch in range(history.epochs, config.epochs):
        start = time.perf_counter()
        model.train()
        total_loss, correct, seen, nfe, nfe_back, batches = 0.0, 0, 0, 0, 0, 0
        for batch in task.batches(model, epoch, config, device):
            optimizer.zero_grad(set_to_none=True)
            try:
                result = task.step(model, batch, epoch)
                result.loss.backward()
            except SolverError as err:
                bar.close()
                raise type(err)(f"training {name!r} stopped at epoch {epoch}, batch {batches}: {err}") from None
            batch_nfe, batch_backward = task.solver_cost(model)
            optimizer.step()
            loss = result.loss.item()
            history.batch_loss.append(loss)
            history.batch_forward_nfe.append(batch_nfe)
            history.batch_backward_nfe.append(batch_backward)
            total_loss += loss * result.count
            seen += result.count
            correct += result.correct or 0
            nfe, nfe_back, batches = nfe + batch_nfe, nfe_back + batch_backward, batches + 1
        if batches == 0:
            raise ValueError(f"training {name!r}: epoch {epoch} has no batches (is the training data empty?)")
        scheduler.step()
        history.train_loss.append(total_loss / seen)
        if result.correct is not None:
            history.train_accuracy.append(correct / seen)
        accuracy = task.evaluate(model, device)
        if accuracy is not None:
            history.test_accuracy.append(accuracy)
        history.forward_nfe.append(nfe / batches)
        history.backward_nfe.append(nfe_back / batches)
        history.seconds.append(time.perf_counter() - start)
        if use_cache:
            save_checkpoint(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "scheduler": scheduler.state_dict(), "history": asdict(history)})
        postfix = {"loss": f"{history.train_loss[-1]:.3f}"}
        if accuracy is not None:
            postfix["test_acc"] = f"{accuracy:.3f}"
        bar.set_postfix(postfix)
        bar.update(1)
    bar.close()
    return history


@torch.no_grad()
def evaluate(
    model: nn.Module, dataset: Dataset, device: torch.device | str = "cpu", batch_size: int = 500,
    predict: Predict = argmax_prediction,
) -> float:
    """Accuracy of ``predict(model(x))`` against the targets; the model's train/eval mode is restored."""
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("evaluate() got an empty data set: there is no accuracy to measure")
    correct = 0
    with eval_mode(model):
        for x, y in DataLoader(dataset, batch_size=batch_size):
            correct += (predict(model(x.to(device))).cpu() == y).sum().item()
    return correct / len(dataset)  # type: ignore[arg-type]


@dataclass
class SupervisedTask:
    """Minimise ``loss_fn(model(x), y)`` (+ ``regularizer``) over shuffled batches of ``train``;
    count ``predict(outputs) == y``; evaluate on ``test`` after every epoch.

    ``batch_transform`` replaces each batch's inputs before the step (augmentation, adversarial
    examples), drawing from a generator seeded by (seed, epoch); ``regularizer`` is evaluated on
    the transformed inputs.
    """

    train: Dataset
    test: Dataset
    loss_fn: LossFn = F.cross_entropy
    predict: Predict = argmax_prediction
    batch_transform: BatchTransform | None = None
    regularizer: Regularizer | None = None

    def __post_init__(self) -> None:
        if len(self.train) == 0:  # type: ignore[arg-type]
            raise ValueError("the training set is empty: pass a data set with at least one example")

    def fingerprint(self) -> dict[str, str]:
        return {
            "train": dataset_fingerprint(self.train),
            "test": dataset_fingerprint(self.test),
            **{k: describe(v) for k, v in self._hook_items()},
        }

    def _hook_items(self) -> list[tuple[str, Any]]:
        return [("loss_fn", self.loss_fn), ("predict", self.predict), ("batch_transform", self.batch_transform),
                ("regularizer", self.regularizer)]

    def hooks(self) -> list[Any]:
        return [v for _, v in self._hook_items() if v is not None]

    def batches(
        self, model: nn.Module, epoch: int, config: TrainConfig, device: torch.device | str
    ) -> Iterator[tuple[Tensor, Tensor]]:
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        if self.batch_transform is not None:
            self._transform_rng = torch.Generator(device=device).manual_seed(config.seed * 100_003 + epoch + 7_919)
        for x, y in DataLoader(self.train, batch_size=config.batch_size, shuffle=True, generator=generator):
            yield x.to(device), y.to(device)

    def step(self, model: nn.Module, batch: tuple[Tensor, Tensor], epoch: int) -> Step:
        x, y = batch
        if self.batch_transform is not None:
            x = self.batch_transform(model, x, y, epoch, self._transform_rng).detach()
            model.train()
        outputs = model(x)
        loss = self.loss_fn(outputs, y)
        if self.regularizer is not None:
            loss = loss + self.regularizer(model, x, y, epoch)
        return Step(loss, len(y), int((self.predict(outputs) == y).sum().item()))

    def solver_cost(self, model: nn.Module) -> tuple[int, int]:
        return forward_nfe(model), backward_nfe(model)

    def evaluate(self, model: nn.Module, device: torch.device | str) -> float:
        return evaluate(model, self.test, device, predict=self.predict)


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
    """Train ``model`` in place on ``train``, evaluating on ``test`` after every epoch: :func:`train_model`
    with a :class:`SupervisedTask`. Accuracy counts ``predict(outputs) == targets`` (class argmax by
    default; :func:`sign_prediction` with a regression ``loss_fn`` onto ±1 targets). The hooks,
    loss and prediction functions are part of the cache key."""
    task = SupervisedTask(train, test, loss_fn, predict, batch_transform, regularizer)
    return train_model(model, task, config, name=name, device=device, use_cache=use_cache, progress=progress)

