"""Equilibria of autonomous fields and the linear-stability tests of their Jacobians.

* :func:`is_hurwitz` — every eigenvalue has a negative real part (asymptotic stability of ``ż = Jz``);
* :func:`is_diagonally_dominant` — negative diagonal and strict row dominance, Gershgorin's
  sufficient condition for Hurwitz;
* :func:`find_equilibria` — follow the flow for a long time, then polish by Newton's method.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..solvers import solve
from .stability import jacobians

__all__ = ["find_equilibria", "is_diagonally_dominant", "is_hurwitz", "max_real_eigenvalue"]


def max_real_eigenvalue(jacobian: Tensor) -> Tensor:
    """Largest real part of the eigenvalues of each matrix (``(..., d, d)`` → ``(...)``)."""
    return torch.linalg.eigvals(jacobian.detach().double()).real.amax(-1)


def is_hurwitz(jacobian: Tensor) -> Tensor:
    """True where every eigenvalue of the matrix has a strictly negative real part."""
    return max_real_eigenvalue(jacobian) < 0


def is_diagonally_dominant(jacobian: Tensor) -> Tensor:
    """True where every diagonal entry is negative and ``|J_ii| > Σ_{j≠i} |J_ij|`` for every row:
    then each Gershgorin disc lies in the open left half-plane, so the matrix is Hurwitz."""
    diagonal = torch.diagonal(jacobian, dim1=-2, dim2=-1)
    off = jacobian.abs().sum(-1) - diagonal.abs()
    return ((diagonal < 0) & (diagonal.abs() > off)).all(-1)


def find_equilibria(
    field: nn.Module, z0: Tensor, t1: float = 200.0, newton_steps: int = 20, tol: float = 1e-6
) -> tuple[Tensor, Tensor]:
    """Equilibria reached from the states ``z0`` (``(n, d)``): the flow to ``t1`` (dopri5, rtol = atol =
    ``tol``) then ``newton_steps`` Newton steps ``z ← z − J(z)⁻¹ f(z)`` (skipped where ``J`` is singular).
    Returns the equilibria and their residuals ``‖f(z*)‖``; a large residual means no equilibrium was
    reached (the flow still moves at ``t1``)."""
    with torch.no_grad():
        z = solve(field, z0.detach(), torch.tensor([0.0, t1]).to(z0), tol, tol, "dopri5").ys[-1]
    t0 = z.new_zeros(())
    for _ in range(newton_steps):
        with torch.no_grad():
            f = field(t0, z)
        jac = jacobians(field, z).detach()
        step = torch.linalg.lstsq(jac, f[..., None]).solution[..., 0]
        candidate = z - step
        with torch.no_grad():
            better = field(t0, candidate).norm(dim=-1) < f.norm(dim=-1)
        z = torch.where(better[:, None], candidate, z)
    with torch.no_grad():
        residual = field(t0, z).norm(dim=-1)
    return z, residual
