"""Training: one engine (:func:`train_model`) with tasks, the model cache, hooks and regularisers.

* :mod:`~nodekit.training.loop` — :func:`train_model`, :func:`fit` (supervised), :class:`TrainConfig`, :class:`History`;
* :mod:`~nodekit.training.tasks` — :class:`DensityTask` (CNFs), :class:`SnippetTask` (dynamics);
* :mod:`~nodekit.training.cache` — run keys, fingerprints, checkpoints;
* :mod:`~nodekit.training.hooks` — batch transforms: Gaussian augmentation, adversarial training;
* :mod:`~nodekit.training.regularizers` — TisODE's steady-state penalty, SODEF's stability terms;
* :mod:`~nodekit.training.sodef` — SODEF's three training phases.
"""

from .loop import (
    History,
    SupervisedTask,
    TrainConfig,
    argmax_prediction,
    evaluate,
    fit,
    sign_prediction,
    train_model,
)
from .tasks import DensityTask, SnippetTask

__all__ = [
    "DensityTask", "History", "SnippetTask", "SupervisedTask", "TrainConfig", "argmax_prediction", "evaluate", "fit",
    "sign_prediction", "train_model",
]
