"""Continuous normalizing flows: a density transported by an ODE, with its log-density.

A sample of the base density ``p_0 = N(0, I)`` at ``t = 0`` is moved by ``dz/dt = f(t, z)`` to
the data at ``t = t1``. Along the path the log-density obeys the instantaneous change of
variables ``d log p_t(z(t))/dt = -tr(∂f/∂z)``, so the flow integrates the augmented state
``[z, Δ]`` with ``dΔ/dt = -tr(∂f/∂z)`` (one tensor of shape ``(batch, dim + 1)``) through
nodekit's solvers. The trace is computed exactly (one vector–Jacobian product per dimension)
or estimated by Hutchinson's ``εᵀ (∂f/∂z) ε`` with one probe ``ε`` drawn per solve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..adjoint import AdjointStats, solve_adjoint
from ..solvers import SolverStats, solve

__all__ = [
    "CNF",
    "PROBES",
    "TRACES",
    "AugmentedDynamics",
    "exact_trace",
    "hutchinson_trace",
    "hutchinson_variance",
    "linear_flow_log_prob",
    "sample_probe",
    "standard_normal_log_prob",
]

TRACES: tuple[str, ...] = ("exact", "hutchinson")
PROBES: tuple[str, ...] = ("rademacher", "gaussian")


# ----------------------------------------------------------------------------- traces


def exact_trace(f: Tensor, z: Tensor, create_graph: bool = False) -> Tensor:
    """``tr(∂f/∂z)`` for each row, by one backward pass per dimension.

    ``f = field(t, z)`` of shape ``(batch, dim)`` must treat rows independently (no batch
    statistics), so the gradient of ``f[:, i].sum()`` holds every row's ``∂f_i/∂z``.
    """
    total = torch.zeros_like(f[:, 0])
    if not f.requires_grad:  # f does not depend on z at all
        return total
    for i in range(f.shape[1]):
        (grad,) = torch.autograd.grad(f[:, i].sum(), z, create_graph=create_graph, retain_graph=True, allow_unused=True)
        if grad is not None:
            total = total + grad[:, i]
    return total


def hutchinson_trace(f: Tensor, z: Tensor, probe: Tensor, create_graph: bool = False) -> Tensor:
    """Unbiased estimate ``εᵀ (∂f/∂z) ε`` of each row's trace, from one vector–Jacobian product."""
    if not f.requires_grad:
        return torch.zeros_like(f[:, 0])
    (vjp,) = torch.autograd.grad(f, z, grad_outputs=probe, create_graph=create_graph, retain_graph=True, allow_unused=True)
    if vjp is None:
        return torch.zeros_like(f[:, 0])
    return (vjp * probe).sum(dim=1)


def sample_probe(like: Tensor, kind: str = "rademacher", generator: torch.Generator | None = None) -> Tensor:
    """A probe with ``E[ε εᵀ] = I``: ±1 entries (``"rademacher"``) or standard normal (``"gaussian"``)."""
    if kind == "gaussian":
        return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
    if kind == "rademacher":
        bits = torch.randint(0, 2, like.shape, generator=generator, device=like.device)
        return (2 * bits - 1).to(like.dtype)
    raise ValueError(f"unknown probe {kind!r}; choose one of: {', '.join(PROBES)}")


def hutchinson_variance(jacobian: Tensor, kind: str = "rademacher") -> Tensor:
    """Variance of ``εᵀ J ε`` for Jacobians ``J`` of shape ``(..., d, d)``.

    With ``S = (J + Jᵀ)/2``: ``2 ‖S‖²_F`` for Gaussian probes and ``2 (‖S‖²_F − Σ_i J_ii²)`` for
    Rademacher probes, which never exceeds the Gaussian variance.
    """
    sym = (jacobian + jacobian.transpose(-1, -2)) / 2
    frobenius = sym.pow(2).sum(dim=(-1, -2))
    if kind == "gaussian":
        return 2 * frobenius
    if kind == "rademacher":
        return 2 * (frobenius - jacobian.diagonal(dim1=-2, dim2=-1).pow(2).sum(-1))
    raise ValueError(f"unknown probe {kind!r}; choose one of: {', '.join(PROBES)}")


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """Log-density of ``N(0, I)`` at each row of ``z``."""
    return -0.5 * (z.pow(2).sum(dim=1) + z.shape[1] * math.log(2 * math.pi))


def linear_flow_log_prob(x: Tensor, A: Tensor, t: float) -> Tensor:
    """Closed form ``log p_t(x) = log p_0(e^{-At} x) − t·tr(A)`` of the linear flow from ``N(0, I)``."""
    z0 = x @ torch.linalg.matrix_exp(-A * t).T
    return standard_normal_log_prob(z0) - t * torch.trace(A)


# ----------------------------------------------------------------------------- the flow


class AugmentedDynamics(nn.Module):
    """``d/dt [z, Δ] = [f(t, z), -tr(∂f/∂z)]`` on a state of shape ``(batch, dim + 1)``.

    One instance serves one solve: ``probe`` is that solve's Hutchinson noise (None for the exact
    trace), so an adjoint backward pass run later sees the probe of its own forward solve, however
    many solves came in between. Under ``torch.no_grad`` the trace is taken without a graph and the
    outputs are detached.
    """

    def __init__(self, field: nn.Module, trace: str, probe: Tensor | None = None) -> None:
        super().__init__()
        if trace == "hutchinson" and probe is None:
            raise ValueError("the Hutchinson trace needs a probe: pass probe=sample_probe(z)")
        self.field = field
        self.trace = trace
        self.probe = probe

    def forward(self, t: Tensor, state: Tensor) -> Tensor:
        keep_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            z = state[:, :-1]
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            f = self.field(t, z)
            if self.trace == "exact":
                trace = exact_trace(f, z, create_graph=keep_graph)
            else:
                trace = hutchinson_trace(f, z, self.probe, create_graph=keep_graph)
        out = torch.cat([f, -trace[:, None]], dim=1)
        return out if keep_graph else out.detach()


class CNF(nn.Module):
    """Continuous normalizing flow from ``N(0, I)`` at ``t = 0`` to the data at ``t = t1``.

    :param field: the vector field ``f(t, z)`` (an ``nn.Module`` acting on rows of ``(batch, dim)``).
    :param dim: dimension of the data.
    :param t1: integration time of the flow (FFJORD's toy experiments use 0.5).
    :param trace: ``"exact"`` (``dim`` vector–Jacobian products) or ``"hutchinson"`` (one).
    :param probe: Hutchinson noise, ``"rademacher"`` or ``"gaussian"``; one draw per solve.
    :param method: solver method, with ``rtol``, ``atol`` and ``options`` passed to :func:`nodekit.solvers.solve`.
    :param adjoint: differentiate with nodekit's adjoint method (``nodekit.adjoint``, memory flat in
        the number of steps) instead of backpropagating through the solver's operations.

    ``last_stats`` holds the solver statistics of the most recent forward solve and, with
    ``adjoint``, ``last_backward_stats`` those of its backward pass once it has run.
    """

    def __init__(
        self,
        field: nn.Module,
        dim: int,
        t1: float = 0.5,
        trace: str = "exact",
        probe: str = "rademacher",
        method: str = "dopri5",
        rtol: float = 1e-5,
        atol: float = 1e-5,
        options: dict[str, Any] | None = None,
        adjoint: bool = False,
    ) -> None:
        super().__init__()
        if trace not in TRACES:
            raise ValueError(f"unknown trace {trace!r}; choose one of: {', '.join(TRACES)}")
        if probe not in PROBES:
            raise ValueError(f"unknown probe {probe!r}; choose one of: {', '.join(PROBES)}")
        if not (isinstance(dim, int) and dim >= 1):
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        if not t1 > 0:
            raise ValueError(f"t1 must be positive, got {t1}")
        self.field = field
        self.trace = trace
        self.dim, self.t1 = dim, float(t1)
        self.probe = probe
        self.method, self.rtol, self.atol = method, rtol, atol
        self.options = dict(options or {})
        self.adjoint = adjoint
        self.last_stats: SolverStats | None = None
        self.last_backward_stats: AdjointStats | None = None

    def _check(self, x: Tensor, what: str) -> None:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"{what} must be a tensor of shape (batch, {self.dim}), got {shape}; "
                f"reshape with {what}.reshape(-1, {self.dim})"
            )

    def _time(self, t: float | None) -> float:
        t = self.t1 if t is None else float(t)
        if not 0 < t <= self.t1:
            raise ValueError(f"time t must lie in (0, t1={self.t1:g}], got {t:g}")
        return t

    def integrate(self, z: Tensor, times: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Solve the augmented ODE from ``z`` at ``times[0]`` through ``times``.

        Returns the states ``zs`` (``(len(times), batch, dim)``) and ``Δ`` with
        ``Δ[k] = log p_{times[k]}(zs[k]) - log p_{times[0]}(z)`` (``(len(times), batch)``).
        ``times`` may decrease (a solve backwards in time, from data towards the base).
        """
        self._check(z, "z")
        times = torch.as_tensor(times, dtype=z.dtype, device=z.device)
        probe = sample_probe(z, self.probe, generator) if self.trace == "hutchinson" else None
        dynamics = AugmentedDynamics(self.field, self.trace, probe)  # binds this solve's probe
        state = torch.cat([z, torch.zeros_like(z[:, :1])], dim=1)
        solver = solve_adjoint if self.adjoint else solve
        sol = solver(dynamics, state, times, self.rtol, self.atol, self.method, self.options)
        self.last_stats = sol.stats
        self.last_backward_stats = sol.backward if self.adjoint else None
        return sol.ys[..., :-1], sol.ys[..., -1]

    def to_base(self, x: Tensor, t: float | None = None, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Carry points ``x`` at time ``t`` (default ``t1``) back to ``t = 0``: ``(z0, Δ)``."""
        self._check(x, "x")
        times = torch.tensor([self._time(t), 0.0], dtype=x.dtype, device=x.device)
        zs, delta = self.integrate(x, times, generator)
        return zs[-1], delta[-1]

    def log_prob(self, x: Tensor, t: float | None = None, generator: torch.Generator | None = None) -> Tensor:
        """``log p_t(x)`` for each row of ``x`` (default ``t = t1``, the model's density).

        With ``trace="hutchinson"`` this is an unbiased estimate, exact in expectation.
        """
        z0, delta = self.to_base(x, t, generator)
        return standard_normal_log_prob(z0) - delta

    def forward(self, x: Tensor) -> Tensor:
        """Same as :meth:`log_prob`."""
        return self.log_prob(x)

    def sample(
        self, n: int, generator: torch.Generator | None = None, times: Sequence[float] | Tensor | None = None
    ) -> Tensor:
        """``n`` samples of the model: base samples pushed from ``t = 0`` to ``t1``.

        With ``times`` (increasing, from 0) the whole path is returned, ``(len(times), n, dim)``.
        """
        zs, _ = self.sample_with_log_prob(self.base_sample(n, generator), times)
        return zs[-1] if times is None else zs

    def base_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws of the base density ``N(0, I)`` in the flow's dtype and device."""
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"n must be a positive int, got {n!r}")
        p = next(self.parameters(), None)
        dtype = p.dtype if p is not None else torch.get_default_dtype()
        device = p.device if p is not None else None
        return torch.randn(n, self.dim, generator=generator, dtype=dtype).to(device)

    def sample_with_log_prob(self, z0: Tensor, times: Sequence[float] | Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Push base points ``z0`` through ``times`` (default ``[0, t1]``): paths and their log-densities."""
        self._check(z0, "z0")
        times = torch.as_tensor([0.0, self.t1] if times is None else times, dtype=z0.dtype, device=z0.device)
        if times[0] != 0 or times[-1] > self.t1 + 1e-12:
            raise ValueError(f"sampling times must start at 0 and end by t1={self.t1:g}, got {times.tolist()}")
        zs, delta = self.integrate(z0, times)
        return zs, standard_normal_log_prob(z0)[None] + delta

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, t1={self.t1:g}, trace={self.trace!r}, probe={self.probe!r}, method={self.method!r}, "
            f"rtol={self.rtol:g}, atol={self.atol:g}, options={self.options}, adjoint={self.adjoint}"
        )
