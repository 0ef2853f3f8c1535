"""Learning a vector field from trajectories: the linear systems ``z' = A z`` of chapter 3.

The recipe follows the torchdiffeq demo that Lopatin's experiments build on: observe
trajectories, cut random snippets of a few consecutive observations, solve the model field from
each snippet's first state over the snippet's times, and penalise the mean absolute difference
to the observations. Gradients come from nodekit's adjoint (or backprop). Runs are cached under
:func:`nodekit.train.cache_dir` keyed by everything that determines them.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from .adjoint import solve_adjoint
from .errors import SolverError
from .solvers import solve
from .train import cache_dir, run_key

__all__ = [
    "LINEAR_SYSTEMS",
    "CubicMLPField",
    "DynamicsConfig",
    "DynamicsHistory",
    "LinearField",
    "Trajectories",
    "fit_dynamics",
    "jacobian_eigenvalues",
    "jacobians",
    "linear_trajectories",
    "plot_phase_portrait",
]

LINEAR_SYSTEMS: dict[str, list[list[float]]] = {
    "stable focus": [[-1.0, -1.0], [1.0, -1.0]],
    "stable node": [[-1.0, 0.0], [0.0, -2.0]],
    "centre": [[0.0, -1.0], [1.0, 0.0]],
    "unstable focus": [[1.0, -1.0], [1.0, 1.0]],
}
"""The matrices ``A`` of Lopatin's experiments (eigenvalues -1±i, -1 and -2, ±i) and an unstable one (1±i)."""


class LinearField(nn.Module):
    """``f(t, z) = W z``: a linear layer without bias, whose eigenvalues can be read off."""

    def __init__(self, dim: int = 2) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim, bias=False)

    @property
    def matrix(self) -> Tensor:
        return self.linear.weight.detach()

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self.linear(z)


class CubicMLPField(nn.Module):
    """The torchdiffeq demo's field ``f(t, z) = MLP(z³)`` (2 → 50 → 2, tanh). The cube suits the
    demo's cubic dynamics; for large states it makes the field's Jacobian, ``∝ z²``, huge."""

    def __init__(self, dim: int = 2, hidden: int = 50) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, dim))

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self.net(z**3)

    @torch.no_grad()
    def steepest_layer(self, radius: float, grid: int = 4096) -> tuple[float, float]:
        """Where the field is steepest on the circle ``|z| = radius`` (a 2-D field).

        Each hidden unit switches (its tanh is steepest) where its pre-activation
        ``w·z³ + b`` crosses zero. Returns the largest ``|eigenvalue|`` of ``∂f/∂z`` at those
        crossings, and the width of the narrowest switching layer (where ``|w·z³ + b| < 1``,
        measured across it), both in float64. Random samples of the plane miss these layers:
        they thin out like ``1/|z|²``.
        """
        w1, b1 = self.net[0].weight.double(), self.net[0].bias.double()
        w2 = self.net[2].weight.double()
        theta = torch.linspace(0, 2 * torch.pi, grid + 1, dtype=torch.float64)

        def pre(angle: Tensor) -> Tensor:  # (..., hidden)
            cube = radius**3 * torch.stack([angle.cos() ** 3, angle.sin() ** 3], dim=-1)
            return cube @ w1.T + b1

        values = pre(theta)  # (grid + 1, hidden)
        step, unit = torch.nonzero(values[:-1].sign() * values[1:].sign() < 0, as_tuple=True)
        if len(step) == 0:
            return 0.0, float("inf")
        lo, hi = theta[step], theta[step + 1]
        for _ in range(60):  # bisection on every crossing at once
            mid = (lo + hi) / 2
            same = pre(mid)[torch.arange(len(mid)), unit].sign() == values[step, unit].sign()
            lo, hi = torch.where(same, mid, lo), torch.where(same, hi, mid)
        z = radius * torch.stack([lo.cos(), lo.sin()], dim=-1)  # (crossings, 2)
        slope = 1 - torch.tanh(z**3 @ w1.T + b1) ** 2  # (crossings, hidden)
        jac = torch.einsum("ij,nj,jk,nk->nik", w2, slope, w1, 3 * z**2)
        steepest = torch.linalg.eigvals(jac).abs().max().item()
        widths = 2 / (w1[unit] * 3 * z**2).norm(dim=-1)
        return steepest, widths.min().item()


@dataclass
class Trajectories:
    """Observations ``z[i, j]`` of trajectory ``j`` at time ``t[i]``."""

    t: Tensor
    z: Tensor

    def snippets(self, batch_size: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``batch_size`` random runs of ``length`` consecutive observations.

        Returns the snippet times (starting at 0), the start states ``(batch, dim)`` and the
        observations ``(length, batch, dim)``, the first of which are the start states.
        """
        n_times, n_traj = self.z.shape[:2]
        if length > n_times:
            raise ValueError(f"snippets of {length} observations need at least that many times, got {n_times}")
        start = torch.randint(0, n_times - length + 1, (batch_size,), generator=generator)
        which = torch.randint(0, n_traj, (batch_size,), generator=generator)
        offsets = torch.arange(length)
        observed = self.z[start[None, :] + offsets[:, None], which[None, :]]
        return self.t[:length] - self.t[0], observed[0], observed


def linear_trajectories(
    a: Tensor | list[list[float]], z0: Tensor, t: Tensor, noise: float = 0.0, seed: int = 0
) -> Trajectories:
    """Exact solutions ``z(t) = exp(A t) z0`` of ``z' = A z`` (no solver error), plus Gaussian
    observation noise of standard deviation ``noise``."""
    a = torch.as_tensor(a, dtype=z0.dtype)
    flows = torch.linalg.matrix_exp(a * t[:, None, None])  # (T, d, d)
    z = torch.einsum("tij,nj->tni", flows, z0)
    if noise:
        z = z + noise * torch.randn(z.shape, generator=torch.Generator().manual_seed(seed), dtype=z.dtype)
    return Trajectories(t=t, z=z)


@dataclass(frozen=True)
class DynamicsConfig:
    """Training settings: Adam on the mean absolute error of snippets.

    ``normalise`` divides each snippet by the norm of its first state; that leaves ``z' = A z``
    unchanged (the field is linear) and keeps the numbers of order one however much the
    trajectories grow, but it changes a nonlinear field's dynamics.
    """

    iterations: int
    lr: float = 1e-2
    batch_size: int = 32
    snippet_length: int = 10
    method: str = "dopri5"
    rtol: float = 1e-5
    atol: float = 1e-6
    step_size: float | None = None
    adjoint: bool = True
    normalise: bool = False
    seed: int = 0


@dataclass
class DynamicsHistory:
    """Loss and solver work of every iteration."""

    loss: list[float] = field(default_factory=list)
    forward_nfe: list[int] = field(default_factory=list)
    backward_nfe: list[int] = field(default_factory=list)
    seconds: float = 0.0


def fit_dynamics(
    model: nn.Module, data: Trajectories, config: DynamicsConfig, *, name: str,
    use_cache: bool = True, progress: bool = True,
) -> DynamicsHistory:
    """Train the field ``model`` in place on snippets of ``data``; return the history.

    A solver failure (e.g. :class:`~nodekit.StepSizeUnderflowError`) is re-raised with the
    iteration at which it happened; a failed run is not cached. With ``use_cache`` a finished run
    is loaded instead of retrained.
    """
    if not re.fullmatch(r"[\w.-]+", name):
        raise ValueError(f"name {name!r} names the cache file: use letters, digits, '-', '_' and '.' only")
    digest = hashlib.sha256(data.z.numpy().tobytes() + data.t.numpy().tobytes()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{run_key(name, model, config, data=digest)}.pt"
    if use_cache and path.exists():
        state = torch.load(path, weights_only=False)
        model.load_state_dict(state["model"])
        return DynamicsHistory(**state["history"])
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    options = {"step_size": config.step_size} if config.step_size is not None else None
    solver: Callable[..., Any] = solve_adjoint if config.adjoint else solve
    history = DynamicsHistory()
    start = time.perf_counter()
    bar = tqdm(range(config.iterations), desc=name, disable=not progress, mininterval=1.0, dynamic_ncols=True)
    for iteration in bar:
        t, z0, observed = data.snippets(config.batch_size, config.snippet_length, generator)
        if config.normalise:
            scale = z0.norm(dim=-1, keepdim=True)
            z0, observed = z0 / scale, observed / scale
        try:
            sol = solver(model, z0, t, config.rtol, config.atol, config.method, options)
            loss = (sol.ys - observed).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        except SolverError as err:
            bar.close()
            raise type(err)(f"training {name!r} stopped at iteration {iteration}: {err}") from None
        optimizer.step()
        history.loss.append(loss.item())
        history.forward_nfe.append(sol.stats.nfe)
        history.backward_nfe.append(sol.backward.nfe if config.adjoint else 0)
        if iteration % 25 == 0:
            bar.set_postfix(loss=f"{history.loss[-1]:.3g}", refresh=False)
    history.seconds = time.perf_counter() - start
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "history": asdict(history)}, path)
    return history


def jacobians(model: nn.Module, z: Tensor) -> Tensor:
    """``∂f/∂z`` of the autonomous field ``model`` at each state of ``z`` (``(n, d)`` → ``(n, d, d)``)."""

    def field(x: Tensor) -> Tensor:
        return model(torch.zeros((), dtype=x.dtype), x[None])[0]

    return torch.func.vmap(torch.func.jacrev(field))(z)


def jacobian_eigenvalues(model: nn.Module, z: Tensor) -> Tensor:
    """Eigenvalues of ``∂f/∂z`` at the state ``z`` (``(d,)``, or ``(n, d)`` for ``n`` states): for a
    linear field, those of ``W``; for a nonlinear one at an equilibrium, its linearisation's."""
    eigenvalues = torch.linalg.eigvals(jacobians(model, z.reshape(-1, z.shape[-1])).detach())
    return eigenvalues.reshape(*z.shape[:-1], -1)


def plot_phase_portrait(
    ax: Any, field_fn: Callable[[Tensor], Tensor], lim: float = 2.5, density: float = 1.0, color: str = "C0",
    title: str = "",
) -> None:
    """Streamlines of the planar field ``field_fn(z)`` (``z`` of shape ``(n, 2)``) on ``[-lim, lim]²``."""
    grid = torch.linspace(-lim, lim, 25)
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        v = field_fn(zz).reshape(25, 25, 2)
    ax.streamplot(grid.numpy(), grid.numpy(), v[..., 0].numpy(), v[..., 1].numpy(), density=density, color=color,
                  linewidth=0.7, arrowsize=0.8)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title, xlabel="$z_1$", ylabel="$z_2$")
