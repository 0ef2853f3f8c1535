"""SODEF (Kang et al. 2021): feature extractor → ODE block with stable equilibria → linear head.

* :func:`regular_simplex` / :func:`simplex_head` — the fixed head of phase 1: ``k`` unit rows with
  pairwise cosine ``−1/(k−1)``, the smallest possible maximum (Kang et al.'s Corollary 1);
* :func:`sodef_encoder` — a small residual CNN to ``features`` coordinates squashed by tanh
  (the released code's ResNet-18 → 512 → 2048 → 64 with tanh, shrunk for CPUs);
* :class:`FeatureStage` — phase 2's model: the field beside the fixed head, on stored features;
* :func:`sodef_net` — the assembled :class:`~nodekit.models.classifiers.ODENet` with a
  :class:`~nodekit.fields.SineField` block.

The three training phases are :func:`nodekit.training.sodef.train_sodef`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..fields import ConvField, SineField, group_norm
from .classifiers import ODENet, ResBlock
from .ode_block import ODEBlock

__all__ = ["FeatureStage", "regular_simplex", "simplex_head", "sodef_encoder", "sodef_net"]


def regular_simplex(classes: int, dim: int) -> Tensor:
    """``classes`` unit vectors in ``R^dim`` with pairwise inner product ``−1/(classes−1)``: the
    centred, normalised standard basis ``e_i − 1/k`` of ``R^k`` placed in the first ``k`` coordinates
    (needs ``dim >= classes``)."""
    if classes < 2 or dim < classes:
        raise ValueError(f"a regular simplex of {classes} vertices needs classes >= 2 and dim >= classes, got dim={dim}")
    vertices = torch.eye(classes) - 1.0 / classes
    vertices = vertices / vertices.norm(dim=1, keepdim=True)
    out = torch.zeros(classes, dim)
    out[:, :classes] = vertices
    return out


def simplex_head(dim: int = 64, classes: int = 10) -> nn.Linear:
    """A bias-free linear layer ``z ↦ V z`` whose rows are :func:`regular_simplex` vertices, frozen
    (``requires_grad = False``): phase 1 trains the encoder to put each class on its own vertex."""
    head = nn.Linear(dim, classes, bias=False)
    with torch.no_grad():
        head.weight.copy_(regular_simplex(classes, dim))
    head.weight.requires_grad_(False)
    return head


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 2, 1), group_norm(c_out), nn.ReLU())


def sodef_encoder(width: int = 32, features: int = 64, in_channels: int = 1, pool: int = 4) -> nn.Sequential:
    """``h_φ``: conv stem, stride-2 conv, one residual block (Chen et al.'s two-conv field), stride-2
    conv (28×28 → 7×7), average pool to ``pool``×``pool``, then ``width·pool² → features`` with tanh,
    as the released code squashes its features into ``[−1, 1]``."""
    if features < 1 or width < 1:
        raise ValueError(f"width and features must be >= 1, got width={width}, features={features}")
    return nn.Sequential(
        nn.Conv2d(in_channels, width // 2, 3, 1, 1), group_norm(width // 2), nn.ReLU(),
        _down(width // 2, width),
        ResBlock(ConvField(width, time_dependent=False)),
        _down(width, width),
        nn.AdaptiveAvgPool2d(pool), nn.Flatten(),
        nn.Linear(width * pool * pool, features), nn.Tanh(),
    )


class FeatureStage(nn.Module):
    """Phase 2's model on stored features ``z₀``: returns the fixed head's logits ``V z₀`` (so the
    accuracy :func:`~nodekit.training.loop.fit` reports is the encoder's) and holds the ``field`` that the
    :class:`~nodekit.training.regularizers.LyapunovRegularizer` trains without integrating it."""

    def __init__(self, field: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.field, self.head = field, head

    def forward(self, z: Tensor) -> Tensor:
        return self.head(z)


def sodef_net(
    encoder: nn.Module, field: nn.Module | None = None, head: nn.Module | None = None, features: int = 64,
    classes: int = 10, t1: float = 5.0, tol: float = 1e-5, method: str = "dopri5", **block_kw,
) -> ODENet:
    """``head(z(t1))`` with ``dz/dt = f(z)``, ``z(0) = encoder(x)``: by default a new
    :class:`~nodekit.fields.SineField` and a new linear head, integrated to ``t1 = 5`` by dopri5 at
    ``rtol = atol = 1e-5`` (the released code's evaluation setting)."""
    if not (math.isfinite(t1) and t1 > 0):
        raise ValueError(f"t1 (the integration time T) must be > 0, got {t1}")
    block = ODEBlock(field if field is not None else SineField(features), t1=t1, method=method, rtol=tol, atol=tol,
                     **block_kw)
    return ODENet(encoder, block, head if head is not None else nn.Linear(features, classes))
