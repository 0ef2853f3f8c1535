"""An ODE-net evaluated at end times it was not trained for: accuracy, robustness and NFE per end time.

A trained ODE-net ``decoder(z(T))`` keeps its field when the end time ``T`` changes, so it can be
evaluated at any ``T`` without retraining. :func:`accuracy_over_end_times` solves once over a
grid of end times (the solver's dense output gives every state), :func:`robust_accuracy_over_end_times`
attacks the model as deployed at each end time (the gradient goes through the solve to that
``T``), and :func:`nfe_over_end_times` counts the field evaluations of a forward pass ending at each ``T``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..attacks import Attack, robust_accuracy
from ..models.classifiers import ODENet
from ..models.modes import eval_mode
from ..models.ode_block import at_end_time, forward_nfe

__all__ = ["accuracy_over_end_times", "nfe_over_end_times", "robust_accuracy_over_end_times"]


def _check_times(times: Sequence[float]) -> list[float]:
    times = [float(t) for t in times]
    if not times or any(t <= 0 for t in times) or any(b <= a for a, b in zip(times, times[1:])):
        raise ValueError(f"end times must be positive and strictly increasing, e.g. (1, 10, 100); got {times}")
    return times


@torch.no_grad()
def accuracy_over_end_times(
    model: ODENet, data: Dataset, times: Sequence[float], *, batch_size: int = 500, device: torch.device | str = "cpu"
) -> list[float]:
    """Clean accuracy of ``model`` with its ODE block ending at each of ``times`` (increasing).

    One solve per batch from 0 to ``times[-1]``; the states at the other times come from the
    solver's dense output (within the solver's tolerance of separate solves to each time).
    """
    times = _check_times(times)
    grid = torch.tensor([0.0, *times])
    correct = torch.zeros(len(times))
    with eval_mode(model):
        for x, y in DataLoader(data, batch_size=batch_size):
            x, y = x.to(device), y.to(device)
            states = model.block.trajectory(model.encoder(x), grid.to(device))[1:]
            for k, z in enumerate(states):
                correct[k] += (model.decoder(z).argmax(1) == y).sum().item()
    return (correct / len(data)).tolist()


def robust_accuracy_over_end_times(
    model: nn.Module, data: Dataset, attack: Attack | None, times: Sequence[float], **kwargs: object
) -> list[float]:
    """:func:`~nodekit.attacks.robust_accuracy` of ``model`` deployed at each end time in ``times``:
    the attack is crafted on, and evaluated at, the same end time (clean accuracy if ``attack`` is None)."""
    results = []
    for t in _check_times(times):
        with at_end_time(model, t):
            results.append(robust_accuracy(model, data, attack, **kwargs))  # type: ignore[arg-type]
    return results


@torch.no_grad()
def nfe_over_end_times(model: nn.Module, x: torch.Tensor, times: Sequence[float]) -> list[int]:
    """Forward NFE of ``model`` on the batch ``x`` with its ODE blocks ending at each of ``times``."""
    nfes = []
    with eval_mode(model):
        for t in _check_times(times):
            with at_end_time(model, t):
                model(x)
                nfes.append(forward_nfe(model))
    return nfes
