"""Vector fields f(t, z) to put inside an ODE block."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def group_norm(channels: int, max_groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with as many groups (≤ ``max_groups``) as divide ``channels``."""
    groups = max(g for g in range(1, min(max_groups, channels) + 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class ConcatConv2d(nn.Module):
    """3×3 convolution that sees the time ``t`` as an extra constant input channel."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels + 1, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        tt = t.to(x.dtype).expand(x.shape[0], 1, *x.shape[2:])
        return self.conv(torch.cat([tt, x], dim=1))


class ConvField(nn.Module):
    """The convolutional field of Chen et al. (2018): (norm, ReLU, conv) twice, then a norm.

    With ``time_dependent`` the convolutions see ``t`` as an extra channel.
    """

    def __init__(self, channels: int, time_dependent: bool = True) -> None:
        super().__init__()
        self.time_dependent = time_dependent
        conv = (lambda: ConcatConv2d(channels, channels)) if time_dependent else (
            lambda: nn.Conv2d(channels, channels, 3, padding=1)
        )
        self.norm1, self.conv1 = group_norm(channels), conv()
        self.norm2, self.conv2 = group_norm(channels), conv()
        self.norm3 = group_norm(channels)

    def _conv(self, conv: nn.Module, t: Tensor, x: Tensor) -> Tensor:
        return conv(t, x) if self.time_dependent else conv(x)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        x = self._conv(self.conv1, t, torch.relu(self.norm1(x)))
        x = self._conv(self.conv2, t, torch.relu(self.norm2(x)))
        return self.norm3(x)


class MLPField(nn.Module):
    """A small MLP field ``dim → hidden → … → dim``; with ``time_dependent`` t is an input."""

    def __init__(
        self, dim: int, hidden: int = 64, layers: int = 2, time_dependent: bool = False,
        activation: type[nn.Module] = nn.Tanh,
    ) -> None:
        super().__init__()
        self.time_dependent = time_dependent
        sizes = [dim + int(time_dependent)] + [hidden] * layers
        modules: list[nn.Module] = []
        for a, b in zip(sizes, sizes[1:]):
            modules += [nn.Linear(a, b), activation()]
        modules.append(nn.Linear(sizes[-1], dim))
        self.net = nn.Sequential(*modules)

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        if self.time_dependent:
            z = torch.cat([z, t.to(z.dtype).expand(*z.shape[:-1], 1)], dim=-1)
        return self.net(z)
