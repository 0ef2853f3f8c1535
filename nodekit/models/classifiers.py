"""Image classifiers: encoder → ODE block (or residual blocks) → head, and the published ones.

* :class:`ODENet` — ``decoder(block(encoder(x)))``, the IVP view of a classifier; :class:`ResBlock`;
* Chen et al. (2018), section 7.1 — :func:`mnist_resnet`, :func:`mnist_rknet`, :func:`mnist_odenet`
  (:data:`MNIST_MODELS`, :func:`mnist_model`): a downsampling stem, Chen et al.'s conv field and a
  pooled head; the ResNet takes six Euler steps of size 1 through six fields, the RK-Net solves one
  time-dependent field with dopri5 and backpropagates through the solver, the ODE-Net does the same
  with the adjoint method. ``width`` is 64 in the paper.
* Yan et al. (2020) — :func:`yan_cnn` and :func:`yan_odenet` (parameter-matched, ~140k parameters at
  width 64: a two-layer feature extractor 28×28 → 13×13, then two convs or an ODE block solved by
  Euler with step 0.1 on [0, 1], then a pooled head) and TisODE (:func:`tisode`, a time-invariant
  field; its steady-state penalty lives in :mod:`nodekit.training.regularizers`).
* :func:`small_mnist_odenet` — a few-thousand-parameter ODE-net for CPU-minute experiments.
* :func:`conv_odenet` — the ODE-net of the rajatvd/NeuralODE code (conv + BatchNorm + pooling, a
  four-conv time-invariant field, a linear head on the flattened state), with a fixed or random end time.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..fields import ConvField, group_norm
from .ode_block import ODEBlock

MNIST_MODELS: tuple[str, ...] = ("ResNet", "RK-Net", "ODE-Net")
"""The names :func:`mnist_model` knows: Chen et al.'s three MNIST classifiers."""


class ODENet(nn.Module):
    """``decoder(ODEBlock(encoder(x)))``: the IVP view of a classifier.

    The encoder maps an image to the initial state z(0), the ODE block evolves it to z(t1),
    and the decoder maps z(t1) to class logits. The block may also be an
    :class:`~nodekit.models.sde.SDEBlock` (a neural SDE).
    """

    def __init__(self, encoder: nn.Module, block: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.block, self.decoder = encoder, block, decoder

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.block(self.encoder(x)))


def small_mnist_odenet(channels: int = 16, method: str = "dopri5", tol: float = 1e-3, **block_kw) -> ODENet:
    """A few-thousand-parameter ODE-net for 28×28 digits (a CPU-minute of training).

    Encoder: 3×3 conv with stride 2 (28→14); field: :class:`~nodekit.fields.ConvField`; decoder: norm, ReLU,
    average pool to 4×4, linear.
    """
    encoder = nn.Sequential(nn.Conv2d(1, channels, 3, stride=2, padding=1), group_norm(channels), nn.ReLU())
    block = ODEBlock(ConvField(channels), method=method, rtol=tol, atol=tol, **block_kw)
    decoder = nn.Sequential(
        group_norm(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(16 * channels, 10)
    )
    return ODENet(encoder, block, decoder)


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters of ``model`` (frozen ones do not count)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


POOLINGS = ("max", "fractional")


def conv_odenet(
    channels: int = 16,
    state_size: int = 7,
    t1: float = 1.0,
    t1_range: tuple[float, float] | None = None,
    pooling: str = "max",
    method: str = "dopri5",
    tol: float = 1e-3,
    adjoint: bool = False,
    classes: int = 10,
    **block_kw: Any,
) -> ODENet:
    """The ODE-net of the rajatvd/NeuralODE code: a 3×3 conv with BatchNorm and pooling to a
    ``state_size``² state of ``channels`` channels, a time-invariant :class:`~nodekit.fields.ConvField` with four
    bias-free convolutions, and a linear layer on the flattened final state.

    ``channels=16, state_size=7`` is the "small" net (17,418 parameters), ``channels=64,
    state_size=28`` the "large" one (650,634). The released code pools with
    ``FractionalMaxPool2d``, which draws random pooling regions on every call, in eval mode too,
    so its predictions and input gradients are random; ``pooling="max"`` (the default) uses a
    deterministic adaptive max-pool instead, ``"fractional"`` the released layer. The block ends
    at ``t1``, or at a uniform random time in ``t1_range`` per training call (see
    :class:`~nodekit.models.ode_block.ODEBlock`).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; use one of {POOLINGS} ('max' is deterministic)")
    pool = (nn.AdaptiveMaxPool2d(state_size) if pooling == "max"
            else nn.FractionalMaxPool2d(2, output_size=state_size))
    encoder = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), pool)
    field = ConvField(channels, time_dependent=False, layers=4, bias=False)
    block = ODEBlock(field, t1=t1, t1_range=t1_range, method=method, rtol=tol, atol=tol, adjoint=adjoint, **block_kw)
    decoder = nn.Sequential(nn.Flatten(), nn.Linear(channels * state_size**2, classes))
    return ODENet(encoder, block, decoder)


class ResBlock(nn.Module):
    """A residual block ``z + f(z)``: one explicit Euler step of size 1 through the field ``f``."""

    def __init__(self, field: nn.Module) -> None:
        super().__init__()
        self.field = field

    def forward(self, z: Tensor) -> Tensor:
        return z + self.field(z.new_zeros(()), z)


# ------------------------------------------------------------------ Chen et al. (2018)


def mnist_stem(width: int = 64) -> nn.Sequential:
    """Chen et al.'s downsampling: 3×3 conv, then two strided 4×4 convs (28 → 26 → 13 → 6), with norms."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, 1),
        group_norm(width), nn.ReLU(),
        nn.Conv2d(width, width, 4, 2, 1),
        group_norm(width), nn.ReLU(),
        nn.Conv2d(width, width, 4, 2, 1),
    )


def mnist_head(width: int = 64, classes: int = 10) -> nn.Sequential:
    """Norm, ReLU, global average pool, linear layer to the class logits."""
    return nn.Sequential(group_norm(width), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))


def mnist_resnet(width: int = 64, blocks: int = 6) -> ODENet:
    """Stem, ``blocks`` residual blocks with fields of their own (time-independent ConvFields), head."""
    body = nn.Sequential(*(ResBlock(ConvField(width, time_dependent=False)) for _ in range(blocks)))
    return ODENet(mnist_stem(width), body, mnist_head(width))  # type: ignore[arg-type]


def _ode_model(width: int, adjoint: bool, tol: float, method: str) -> ODENet:
    block = ODEBlock(ConvField(width), t1=1.0, method=method, rtol=tol, atol=tol, adjoint=adjoint)
    return ODENet(mnist_stem(width), block, mnist_head(width))


def mnist_rknet(width: int = 64, tol: float = 1e-3, method: str = "dopri5") -> ODENet:
    """Stem, one ODE block solved by ``method`` with backpropagation through the solver, head."""
    return _ode_model(width, adjoint=False, tol=tol, method=method)


def mnist_odenet(width: int = 64, tol: float = 1e-3, method: str = "dopri5") -> ODENet:
    """Stem, one ODE block solved by ``method`` with gradients by the adjoint method, head."""
    return _ode_model(width, adjoint=True, tol=tol, method=method)


def mnist_model(name: str, width: int = 64, tol: float = 1e-3) -> ODENet:
    """One of :data:`MNIST_MODELS` by name, at ``width`` channels (``tol`` for the ODE blocks)."""
    if name == "ResNet":
        return mnist_resnet(width)
    if name == "RK-Net":
        return mnist_rknet(width, tol)
    if name == "ODE-Net":
        return mnist_odenet(width, tol)
    raise ValueError(f"unknown MNIST model {name!r}; choose one of {', '.join(MNIST_MODELS)}")


# ------------------------------------------------------------------ Yan et al. (2020)


def feature_extractor(width: int = 64, in_channels: int = 1) -> nn.Sequential:
    """Yan et al.'s two-layer feature extractor (28×28 → 13×13, ``width`` channels)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, 1), group_norm(width), nn.ReLU(),
        nn.Conv2d(width, width, 4, 2, 1), group_norm(width), nn.ReLU(),
    )


def pooled_head(width: int = 64, classes: int = 10, pool: int = 1) -> nn.Sequential:
    """GroupNorm, ReLU, average pooling to ``pool``×``pool`` (1: global, as published) and a linear
    layer to the class logits. Narrow quick-profile models learn much faster with ``pool=4``."""
    return nn.Sequential(
        group_norm(width), nn.ReLU(), nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Linear(width * pool * pool, classes)
    )


def yan_cnn(width: int = 64, in_channels: int = 1, classes: int = 10, pool: int = 1) -> nn.Sequential:
    """The CNN baseline: feature extractor, two 3×3 conv + GroupNorm + ReLU layers, pooled head
    (four conv layers and one linear layer; 141k parameters at width 64)."""
    middle = []
    for _ in range(2):
        middle += [nn.Conv2d(width, width, 3, 1, 1), group_norm(width), nn.ReLU()]
    return nn.Sequential(feature_extractor(width, in_channels), *middle, pooled_head(width, classes, pool))


def yan_odenet(
    width: int = 64,
    method: str = "euler",
    step_size: float | None = 0.1,
    time_dependent: bool = True,
    adjoint: bool = False,
    in_channels: int = 1,
    classes: int = 10,
    t1: float = 1.0,
    pool: int = 1,
    **block_kw: Any,
) -> ODENet:
    """The ODE-net: feature extractor, ODE block (Chen et al.'s two-conv field, solved on [0, t1] by
    ``method``; ``step_size`` for fixed-grid methods), pooled head (142k parameters at width 64).

    ``pool`` sets the head's pooled grid (see :func:`pooled_head`). ``time_dependent=False`` gives TisODE's time-invariant field. For ``method="dopri5"`` pass
    ``step_size=None`` and tolerances ``rtol``/``atol`` in ``block_kw``.
    """
    options = {"step_size": step_size} if step_size is not None and method != "dopri5" else {}
    block = ODEBlock(
        ConvField(width, time_dependent=time_dependent), t1=t1, method=method, options=options,
        adjoint=adjoint, **block_kw,
    )
    return ODENet(feature_extractor(width, in_channels), block, pooled_head(width, classes, pool))


class TisODENet(ODENet):
    """An ODE-net that keeps its last features ``z(T)`` (``last_state``), so that TisODE's
    :func:`~nodekit.training.regularizers.steady_state_penalty` can continue the flow from them without solving again."""

    last_state: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        z = self.block(self.encoder(x))
        self.last_state = z
        return self.decoder(z)


def tisode(width: int = 64, step_size: float = 0.05, **kw: Any) -> TisODENet:
    """TisODE's network: the ODE-net with a time-invariant field (Euler step 0.05 as released)."""
    net = yan_odenet(width, step_size=step_size, time_dependent=False, **kw)
    return TisODENet(net.encoder, net.block, net.decoder)
