"""Image classifiers built around an ODE block: encoder → ODE block → decoder."""

from __future__ import annotations

from torch import Tensor, nn

from .fields import ConvField, group_norm
from .ode_block import ODEBlock


class ODENet(nn.Module):
    """``decoder(ODEBlock(encoder(x)))``: the IVP view of a classifier.

    The encoder maps an image to the initial state z(0), the ODE block evolves it to z(t1),
    and the decoder maps z(t1) to class logits.
    """

    def __init__(self, encoder: nn.Module, block: ODEBlock, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.block, self.decoder = encoder, block, decoder

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.block(self.encoder(x)))


def small_mnist_odenet(channels: int = 16, method: str = "dopri5", tol: float = 1e-3, **block_kw) -> ODENet:
    """A few-thousand-parameter ODE-net for 28×28 digits (a CPU-minute of training).

    Encoder: 3×3 conv with stride 2 (28→14); field: :class:`ConvField`; decoder: norm, ReLU,
    average pool to 4×4, linear.
    """
    encoder = nn.Sequential(nn.Conv2d(1, channels, 3, stride=2, padding=1), group_norm(channels), nn.ReLU())
    block = ODEBlock(ConvField(channels), method=method, rtol=tol, atol=tol, **block_kw)
    decoder = nn.Sequential(
        group_norm(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(16 * channels, 10)
    )
    return ODENet(encoder, block, decoder)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
