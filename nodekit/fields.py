"""Every vector field ``f(t, z)`` of the book, to put inside an ODE block, a CNF or a solver call.

* :class:`ConvField` — (GroupNorm, ReLU, conv) × layers, then a GroupNorm: Chen et al.'s field (two
  layers) and the four-layer, bias-free, time-invariant field of the rajatvd/NeuralODE code;
* :class:`AugmentedConvField` — Dupont et al.'s 1×1 / 3×3 / 1×1 convolutional field;
* :class:`MLPField` — an MLP on vectors, time as an input of the first or of every layer;
* :class:`LinearField` — ``f(z) = W z`` (random or a given matrix), eigenvalues readable;
* :class:`CubicMLPField` — the torchdiffeq demo's ``MLP(z³)``;
* :class:`SineField` — SODEF's ``sin(−(W z + b))``, time-invariant.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def group_norm(channels: int, max_groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with as many groups (≤ ``max_groups``) as divide ``channels``."""
    groups = max(g for g in range(1, min(max_groups, channels) + 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class ConcatConv2d(nn.Module):
    """3×3 convolution that sees the time ``t`` as an extra constant input channel."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels + 1, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        tt = t.to(x.dtype).expand(x.shape[0], 1, *x.shape[2:])
        return self.conv(torch.cat([tt, x], dim=1))


class ConvField(nn.Module):
    """A convolutional field: ``layers`` × (GroupNorm, ReLU, 3×3 conv), then a GroupNorm.

    ``layers=2`` (the default) is the field of Chen et al. (2018); ``layers=4`` with
    ``time_dependent=False, bias=False`` is the field of the rajatvd/NeuralODE code. With
    ``time_dependent`` the convolutions see ``t`` as an extra channel.

    Because the first operation normalises its input, the field is 0-homogeneous in the state:
    ``f(t, c·z) = f(t, z)`` for every ``c > 0`` (up to GroupNorm's ε), so it depends only on the
    direction of ``z``.
    """

    def __init__(self, channels: int, time_dependent: bool = True, layers: int = 2, bias: bool = True) -> None:
        super().__init__()
        if not (isinstance(layers, int) and layers >= 1):
            raise ValueError(f"layers must be an integer >= 1 (the number of convolutions), got {layers!r}")
        self.time_dependent, self.layers = time_dependent, layers
        for i in range(1, layers + 1):
            conv = (ConcatConv2d(channels, channels, bias=bias) if time_dependent
                    else nn.Conv2d(channels, channels, 3, padding=1, bias=bias))
            setattr(self, f"norm{i}", group_norm(channels))
            setattr(self, f"conv{i}", conv)
        setattr(self, f"norm{layers + 1}", group_norm(channels))

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        for i in range(1, self.layers + 1):
            x = torch.relu(getattr(self, f"norm{i}")(x))
            conv = getattr(self, f"conv{i}")
            x = conv(t, x) if self.time_dependent else conv(x)
        return getattr(self, f"norm{self.layers + 1}")(x)


class AugmentedConvField(nn.Module):
    """Dupont et al.'s convolutional field: 1×1, 3×3 and 1×1 convolutions that see ``t`` as an
    extra channel, with ReLU between them; ``channels`` in and out, ``filters`` inside."""

    def __init__(self, channels: int, filters: int) -> None:
        super().__init__()
        self.conv1 = ConcatConv2d(channels, filters, kernel_size=1)
        self.conv2 = ConcatConv2d(filters, filters, kernel_size=3)
        self.conv3 = ConcatConv2d(filters, channels, kernel_size=1)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        x = torch.relu(self.conv1(t, x))
        x = torch.relu(self.conv2(t, x))
        return self.conv3(t, x)


TIME_INPUTS: tuple[str, ...] = ("none", "input", "every layer")


class MLPField(nn.Module):
    """An MLP field ``dim → hidden → … → dim`` on rows of ``(batch, dim)``.

    ``hidden`` is one width repeated ``layers`` times, or the list of widths. ``time`` says where
    ``t`` enters: ``"none"`` (autonomous), ``"input"`` (one more input of the first layer) or
    ``"every layer"`` (FFJORD's ``concat`` layers; ``hidden=(64, 64, 64)`` with tanh is FFJORD's
    size for its 2-D toy densities). The activation sits between the linear layers.
    """

    def __init__(
        self, dim: int, hidden: int | Sequence[int] = 64, layers: int = 2, time: str = "none",
        activation: type[nn.Module] = nn.Tanh,
    ) -> None:
        super().__init__()
        if time not in TIME_INPUTS:
            raise ValueError(f"unknown time input {time!r}; choose one of {TIME_INPUTS}")
        self.time = time
        widths = [hidden] * layers if isinstance(hidden, int) else list(hidden)
        sizes = [dim, *widths, dim]
        extra = [int(time != "none")] + [int(time == "every layer")] * len(widths)
        self.layers = nn.ModuleList(nn.Linear(a + e, b) for a, b, e in zip(sizes, sizes[1:], extra))
        self.activation = activation()

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        tt = t.to(z.dtype).expand(*z.shape[:-1], 1) if self.time != "none" else None
        h = z
        for i, layer in enumerate(self.layers):
            if tt is not None and (i == 0 or self.time == "every layer"):
                h = torch.cat([h, tt], dim=-1)
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self.activation(h)
        return h


class LinearField(nn.Module):
    """``f(t, z) = W z``, without bias. ``LinearField(dim)`` starts from a random ``W`` (a linear
    layer's initialisation); ``LinearField(matrix=A)`` from a copy of ``A`` (in its dtype, drawing
    no random numbers). Its flow ``z(t) = e^{Wt} z(0)`` is known in closed form; ``matrix`` gives ``W``."""

    def __init__(self, dim: int = 2, matrix: Tensor | None = None) -> None:
        super().__init__()
        if matrix is None:
            self.linear = nn.Linear(dim, dim, bias=False)
            return
        if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"matrix must be square, got shape {tuple(matrix.shape)}")
        self.linear = torch.nn.utils.skip_init(nn.Linear, *matrix.shape, bias=False, dtype=matrix.dtype)
        with torch.no_grad():
            self.linear.weight.copy_(matrix)

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


class SineField(nn.Module):
    """SODEF's field ``f(t, z) = sin(−(W z + b))`` (Kang et al. 2021, as in their released code):
    time-invariant, one ``dim × dim`` linear layer. Its Jacobian is ``−diag(cos(W z + b)) W``, so its
    equilibria are the states with ``W z + b ∈ πℤ^dim``; those with ``cos(W z + b) > 0`` and a
    Hurwitz ``−diag(cos(W z + b)) W`` are asymptotically stable."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return torch.sin(-self.linear(z))

    def jacobian(self, z: Tensor) -> Tensor:
        """The closed-form Jacobian ``∂f/∂z`` at each row of ``z`` (``(n, dim)`` → ``(n, dim, dim)``)."""
        return -torch.cos(self.linear(z))[:, :, None] * self.linear.weight
