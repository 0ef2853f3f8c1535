"""Augmented neural ODEs (Dupont et al., 2019): solve the ODE in a space with extra zero dimensions.

A neural ODE maps its input through the time-T flow of a vector field, a homeomorphism of the
input space, so it cannot, for instance, reverse the line or pull a ball out of a surrounding
shell. :class:`AugmentedODE` pads the input with ``augment_dim`` zeros (features for vectors,
channels for images) and solves the ODE in the larger space, where trajectories can pass each
other. ``augment_dim=0`` is the plain neural ODE (NODE) with the same field and head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..fields import AugmentedConvField, MLPField
from .ode_block import ODEBlock

__all__ = ["AugmentedODE", "conv_anode", "mlp_anode", "readout_axes"]

MAX_NUM_STEPS = 1000
"""dopri5's step limit in Dupont et al.'s release; a field that needs more fails with a clear error."""


class AugmentedODE(nn.Module):
    """``head(z(T))`` where ``dz/dt = f(t, z)`` and ``z(0) = [x, 0]`` with ``augment_dim`` zeros.

    Inputs have ``data_dim`` features (shape (N, data_dim)) or channels (shape (N, data_dim, H, W));
    zeros are appended along dim 1. With ``head=None`` the output is the first ``data_dim``
    coordinates of z(T) (a fixed projection: whatever the model does, the flow itself does it);
    otherwise ``head`` receives z(T) flattened to (N, -1).
    """

    def __init__(self, block: ODEBlock, data_dim: int, augment_dim: int = 0, head: nn.Module | None = None) -> None:
        super().__init__()
        if not (isinstance(data_dim, int) and data_dim >= 1):
            raise ValueError(f"data_dim must be an integer >= 1, got {data_dim!r}")
        if not (isinstance(augment_dim, int) and augment_dim >= 0):
            raise ValueError(f"augment_dim must be an integer >= 0 (0 is a plain neural ODE), got {augment_dim!r}")
        self.block, self.head = block, head
        self.data_dim, self.augment_dim = data_dim, augment_dim

    def augment(self, x: Tensor) -> Tensor:
        """``[x, 0]``: the initial state, with ``augment_dim`` zeros appended along dim 1."""
        if x.dim() < 2 or x.shape[1] != self.data_dim:
            raise ValueError(
                f"expected inputs of shape (batch, {self.data_dim}, ...) (data_dim={self.data_dim} features "
                f"or channels), got {tuple(x.shape)}; reshape the batch, e.g. x.view(-1, {self.data_dim}) for vectors"
            )
        if self.augment_dim == 0:
            return x
        return torch.cat([x, x.new_zeros(x.shape[0], self.augment_dim, *x.shape[2:])], dim=1)

    def features(self, x: Tensor) -> Tensor:
        """z(T), the state at the end of the flow (``data_dim + augment_dim`` along dim 1)."""
        return self.block(self.augment(x))

    def trajectory(self, x: Tensor, t: Tensor | Sequence[float]) -> Tensor:
        """States z(t) at the times ``t`` (from 0 to the block's T), stacked along dim 0."""
        return self.block.trajectory(self.augment(x), torch.as_tensor(t, dtype=x.dtype))

    def readout(self, z: Tensor) -> Tensor:
        """The output for final states ``z``: ``head(z)`` or, without a head, the data coordinates."""
        return z[:, : self.data_dim] if self.head is None else self.head(z.flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(self.features(x))

    def extra_repr(self) -> str:
        return f"data_dim={self.data_dim}, augment_dim={self.augment_dim}"


def readout_axes(model: AugmentedODE, z: Tensor) -> tuple[Tensor, float]:
    """Two axes to draw states of a model with a scalar linear head, and the head's threshold.

    Returns the (dim, 2) matrix ``[u, v]``, ``u`` the unit normal of the head's decision hyperplane
    and ``v`` the direction of largest spread of the states ``z`` (N, dim) orthogonal to ``u``, and
    the value ``s*`` of ``u·z`` where the head's output crosses zero. ``states @ axes`` is then a
    picture in which the readout is a vertical line at ``s*``.
    """
    head = model.head
    if not (isinstance(head, nn.Linear) and head.out_features == 1 and head.in_features >= 2):
        raise ValueError(
            "readout_axes needs a model whose head is nn.Linear(dim >= 2, 1), e.g. mlp_anode(d, p) with "
            f"d + p >= 2 and out_features=1; got head {head!r}"
        )
    with torch.no_grad():
        w, b = head.weight[0], head.bias[0]
        u = w / w.norm()
        rest = z - (z @ u)[:, None] * u
        v = torch.linalg.svd(rest - rest.mean(dim=0), full_matrices=False).Vh[0]
        return torch.stack([u, v], dim=1), float(-b / w.norm())


def mlp_anode(
    data_dim: int,
    augment_dim: int = 0,
    hidden: int = 32,
    out_features: int | None = 1,
    *,
    time_dependent: bool = True,
    tol: float = 1e-3,
    method: str = "dopri5",
    t1: float = 1.0,
) -> AugmentedODE:
    """Dupont et al.'s model for vector data: an MLP field (two ReLU layers of ``hidden`` units) on
    R^{data_dim + augment_dim}, solved on [0, t1], and a linear head to ``out_features`` outputs
    (``None``: no head, the output is z(T)'s first ``data_dim`` coordinates)."""
    dim = data_dim + augment_dim
    field = MLPField(dim, hidden=hidden, layers=2, time="input" if time_dependent else "none", activation=nn.ReLU)
    options = {"max_num_steps": MAX_NUM_STEPS} if method == "dopri5" else {}
    block = ODEBlock(field, t1=t1, method=method, rtol=tol, atol=tol, options=options)
    head = None if out_features is None else nn.Linear(dim, out_features)
    return AugmentedODE(block, data_dim, augment_dim, head)


def conv_anode(
    image_shape: tuple[int, int, int] = (1, 28, 28),
    filters: int = 64,
    augment_channels: int = 5,
    classes: int = 10,
    *,
    tol: float = 1e-3,
) -> AugmentedODE:
    """Dupont et al.'s image model: :class:`~nodekit.fields.AugmentedConvField` on the image with
    ``augment_channels`` zero channels, solved by dopri5, then a linear layer on the flattened
    z(T). Their MNIST pair: ``conv_anode(filters=64, augment_channels=5)`` against the
    parameter-matched NODE ``conv_anode(filters=92, augment_channels=0)``."""
    channels, height, width = image_shape
    field = AugmentedConvField(channels + augment_channels, filters)
    block = ODEBlock(field, method="dopri5", rtol=tol, atol=tol, options={"max_num_steps": MAX_NUM_STEPS})
    head = nn.Linear((channels + augment_channels) * height * width, classes)
    return AugmentedODE(block, channels, augment_channels, head)
