"""Training tasks beyond supervised learning, for :func:`nodekit.training.loop.train_model`.

* :class:`DensityTask` — maximum likelihood of a :class:`~nodekit.models.cnf.CNF` on fresh samples of a
  toy density every step;
* :class:`SnippetTask` — learning a vector field from observed trajectories: solve the field from
  each snippet's first state over its times and penalise the mean absolute difference to the
  observations (the recipe of torchdiffeq's ``ode_demo.py``).

An "epoch" here is ``steps_per_epoch`` optimiser steps, the unit of checkpoints and resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..adjoint import solve_adjoint
from ..data.densities import ToyDensity
from ..data.trajectories import Trajectories
from ..solvers import Solution, solve
from .cache import describe, tensor_fingerprint
from .loop import Step, TrainConfig

__all__ = ["DensityTask", "SnippetTask"]


def _check_steps(steps: int) -> None:
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps_per_epoch must be an integer >= 1, got {steps!r}")


@dataclass
class DensityTask:
    """Minimise ``-mean log p(x)`` of a CNF over ``config.batch_size`` fresh samples of ``density``
    per step. The samples and the Hutchinson probe of step ``k`` come from a generator seeded by
    ``(seed, k)``, so a resumed run ends exactly where an uninterrupted one would."""

    density: ToyDensity
    steps_per_epoch: int = 100

    def __post_init__(self) -> None:
        _check_steps(self.steps_per_epoch)

    def fingerprint(self) -> dict[str, str]:
        return {"density": describe(self.density), "steps_per_epoch": str(self.steps_per_epoch)}

    def hooks(self) -> list[Any]:
        return [self.density]

    def batches(
        self, model: nn.Module, epoch: int, config: TrainConfig, device: torch.device | str
    ) -> Iterator[tuple[Tensor, torch.Generator]]:
        dtype = next(model.parameters()).dtype
        for k in range(self.steps_per_epoch):
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch * self.steps_per_epoch + k)
            yield self.density.sample(config.batch_size, generator=generator, dtype=dtype).to(device), generator

    def step(self, model: nn.Module, batch: tuple[Tensor, torch.Generator], epoch: int) -> Step:
        x, generator = batch
        return Step(-model.log_prob(x, generator=generator).mean(), len(x))

    def solver_cost(self, model: nn.Module) -> tuple[int, int]:
        backward = model.last_backward_stats
        return model.last_stats.nfe, backward.nfe if backward is not None else 0

    def evaluate(self, model: nn.Module, device: torch.device | str) -> None:
        return None


@dataclass
class SnippetTask:
    """Fit the field ``model`` to ``data``: each step draws ``config.batch_size`` random runs of
    ``snippet_length`` consecutive observations, solves the field from their first states with
    ``method`` (gradients by nodekit's adjoint or by backpropagation) and takes the mean absolute
    error.

    ``normalise`` divides each snippet by the norm of its first state; that leaves ``z' = A z``
    unchanged (the field is linear) and keeps the numbers of order one however much the
    trajectories grow, but it changes a nonlinear field's dynamics.
    """

    data: Trajectories
    snippet_length: int = 10
    method: str = "dopri5"
    rtol: float = 1e-5
    atol: float = 1e-6
    step_size: float | None = None
    adjoint: bool = True
    normalise: bool = False
    steps_per_epoch: int = 100

    def __post_init__(self) -> None:
        _check_steps(self.steps_per_epoch)
        self._last: Solution | None = None

    def fingerprint(self) -> dict[str, str]:
        settings = {k: v for k, v in vars(self).items() if k not in ("data", "_last")}
        return {"data": tensor_fingerprint(self.data.t, self.data.z), "settings": repr(sorted(settings.items()))}

    def hooks(self) -> list[Any]:
        return []

    def batches(
        self, model: nn.Module, epoch: int, config: TrainConfig, device: torch.device | str
    ) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        for _ in range(self.steps_per_epoch):
            t, z0, observed = self.data.snippets(config.batch_size, self.snippet_length, generator)
            yield t.to(device), z0.to(device), observed.to(device)

    def step(self, model: nn.Module, batch: tuple[Tensor, Tensor, Tensor], epoch: int) -> Step:
        t, z0, observed = batch
        if self.normalise:
            scale = z0.norm(dim=-1, keepdim=True)
            z0, observed = z0 / scale, observed / scale
        options = {"step_size": self.step_size} if self.step_size is not None else None
        solver = solve_adjoint if self.adjoint else solve
        self._last = solver(model, z0, t, self.rtol, self.atol, self.method, options)
        return Step((self._last.ys - observed).abs().mean(), len(z0))

    def solver_cost(self, model: nn.Module) -> tuple[int, int]:
        assert self._last is not None
        return self._last.stats.nfe, self._last.backward.nfe if self.adjoint else 0

    def evaluate(self, model: nn.Module, device: torch.device | str) -> None:
        return None
