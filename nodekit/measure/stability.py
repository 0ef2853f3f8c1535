"""Linear stability of autonomous fields: Jacobians ``∂f/∂z`` at states, and their eigenvalues."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["jacobian_eigenvalues", "jacobians"]


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
