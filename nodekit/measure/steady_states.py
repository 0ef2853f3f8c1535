"""Where the state of an ODE-net goes after the end time it was trained for.

:func:`flow` records the states ``z(t)`` and field values ``f(z(t))`` of a trained ODE-net over a
grid of times; :func:`steady_state_statistics` reduces them to what tells an equilibrium
(``f → 0``) from a steady direction (``f`` constant and parallel to ``z``, so that ``z`` grows
linearly along a fixed direction) from neither; :func:`class_separation` and
:func:`principal_components` say whether different classes end in different states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.modes import eval_mode
from ..models.classifiers import ODENet

__all__ = ["Flow", "class_separation", "flow", "principal_components", "steady_state_statistics"]


@dataclass(frozen=True)
class Flow:
    """States and field values along the trajectories of a batch: ``states[k, i]`` is the
    flattened ``z_i(times[k])``, ``fields[k, i]`` the flattened ``f(times[k], z_i(times[k]))``."""

    times: Tensor
    states: Tensor
    fields: Tensor
    labels: Tensor


@torch.no_grad()
def flow(model: ODENet, x: Tensor, y: Tensor, times: Sequence[float]) -> Flow:
    """Solve ``model``'s ODE block from the encoder's features of ``x`` over ``times`` (which must
    start at 0 and increase) and evaluate the field at every recorded state."""
    grid = torch.tensor([float(t) for t in times])
    if grid[0] != 0 or bool((grid[1:] <= grid[:-1]).any()):
        raise ValueError(f"times must start at 0 and increase strictly, e.g. (0, 1, 10, 100); got {list(times)}")
    with eval_mode(model):
        z0 = model.encoder(x)
        states = model.block.trajectory(z0, grid.to(z0))
        fields = torch.stack([model.block.field(t, z) for t, z in zip(grid.to(z0), states)])
    return Flow(grid, states.flatten(2), fields.flatten(2), y)


def _median(values: Tensor) -> Tensor:
    return values.median(dim=-1).values


def steady_state_statistics(traj: Flow) -> dict[str, Tensor]:
    """Medians over the batch, one value per recorded time (``..._next`` ones per interval):

    ``state_norm`` ‖z‖, ``field_norm`` ‖f(z)‖, ``field_cosine`` cos(f(z), z) (1 on a steady
    direction), ``direction_cosine_next`` cos(z(t_k), z(t_{k+1})) (1 once the direction settles),
    ``field_change_next`` ‖f(z(t_{k+1})) − f(z(t_k))‖ / ‖f(z(t_k))‖ (0 once f is constant).
    """
    z, f = traj.states, traj.fields
    return {
        "state_norm": _median(z.norm(dim=-1)),
        "field_norm": _median(f.norm(dim=-1)),
        "field_cosine": _median(F.cosine_similarity(f, z, dim=-1)),
        "direction_cosine_next": _median(F.cosine_similarity(z[1:], z[:-1], dim=-1)),
        "field_change_next": _median((f[1:] - f[:-1]).norm(dim=-1) / f[:-1].norm(dim=-1).clamp_min(1e-12)),
    }


def class_separation(states: Tensor, labels: Tensor) -> float:
    """Mean distance between the class means of ``states`` (N, D) divided by the mean
    within-class spread (root-mean-square distance of a state to its class mean).

    Scale-free: states that grow along fixed directions keep their ratio. Much above 1: the
    classes sit in distinct regions; about 1 or below: they overlap.
    """
    classes = labels.unique()
    if len(classes) < 2:
        raise ValueError("class_separation needs states of at least two classes")
    means = torch.stack([states[labels == c].mean(0) for c in classes])
    spread = torch.stack([(states[labels == c] - m).pow(2).sum(1).mean().sqrt() for c, m in zip(classes, means)])
    between = torch.pdist(means).mean()
    return float(between / spread.mean())


def principal_components(states: Tensor, k: int = 2) -> Tensor:
    """Projection of the centred ``states`` (N, D) onto their ``k`` leading principal directions."""
    centred = states - states.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    return centred @ v[:k].T
