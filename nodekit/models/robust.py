"""The parameter-matched CNN and ODE-net of Yan et al. (2020), and TisODE's steady-state term.

Both networks share a feature extractor (conv 1→w 3×3 + GroupNorm + ReLU, conv w→w 4×4 stride 2
+ GroupNorm + ReLU: 28×28 → 13×13) and a head (GroupNorm, ReLU, global average pool, linear).
Between them the CNN has two residual-free 3×3 conv layers (conv + GroupNorm + ReLU), the ODE-net
an :class:`~nodekit.models.ODEBlock` whose field has two 3×3 convs (Chen et al.'s field, time as an
extra channel) solved by Euler with step 0.1 on [0, 1]. At width 64 both have about 140k
parameters, as in the paper; TisODE's field is time-invariant (no time channel), and its training
adds :func:`steady_state_penalty` on perturbed inputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..solvers import solve
from .classifiers import ODENet
from .fields import ConvField, group_norm
from .ode_block import ODEBlock


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
    :func:`steady_state_penalty` can continue the flow from them without solving again."""

    last_state: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        z = self.block(self.encoder(x))
        self.last_state = z
        return self.decoder(z)


def tisode(width: int = 64, step_size: float = 0.05, **kw: Any) -> TisODENet:
    """TisODE's network: the ODE-net with a time-invariant field (Euler step 0.05 as released)."""
    net = yan_odenet(width, step_size=step_size, time_dependent=False, **kw)
    return TisODENet(net.encoder, net.block, net.decoder)


def with_solver(model: ODENet, method: str, step_size: float | None = None, tol: float = 1e-3) -> ODENet:
    """Switch the ODE-net's block (in place) to another solver and return the model.

    Fixed-grid methods use ``step_size``; ``dopri5`` uses ``rtol = atol = tol``. Used to evaluate a
    trained model with a finer or different solver than it was trained with.
    """
    block = model.block
    block.method = method
    block.options = {"step_size": step_size} if method != "dopri5" and step_size is not None else {}
    block.rtol = block.atol = tol
    return model


def steady_state_penalty(
    model: ODENet, x: Tensor | None = None, window: tuple[float, float] = (1.0, 1.05)
) -> Tensor:
    """TisODE's steady-state regulariser: mean over the batch of ``∫_T^{T+ΔT} ‖f(z(t))‖₂ dt``.

    ``z`` starts at the encoder's features of ``x`` (in training: the perturbed batch) and is
    solved to ``T = window[0]`` with the block's solver; with ``x=None`` the features ``z(T)`` of
    the model's last forward pass are reused (a :class:`TisODENet` whose block ends at ``T``).
    The flow then continues to ``T + ΔT = window[1]`` with the same method and step, and the
    integral of the field's per-example norm is taken by the trapezoidal rule on that grid. Penalising it pushes the features towards steady states, so
    that small perturbations of the input cannot be amplified by the flow beyond time T.
    """
    start, end = window
    if not 0 <= start < end:
        raise ValueError(f"window must be (T, T + ΔT) with 0 <= T < T + ΔT, e.g. (1.0, 1.05); got {window}")
    block = model.block
    field = block.field
    h = block.options.get("step_size") or (end - start)
    n = max(1, round((end - start) / h))
    if x is None:
        zT = getattr(model, "last_state", None)
        if zT is None or abs(float(block.t[-1]) - start) > 1e-9:
            raise ValueError("steady_state_penalty(model) without x needs a TisODENet whose last forward pass "
                             f"ended at T = window[0] = {start}; pass x to solve from the inputs instead")
    else:
        z0 = model.encoder(x)
        zT = solve(field, z0, torch.tensor([0.0, start]).to(z0), block.rtol, block.atol, block.method,
                   block.options).ys[-1]
    times = torch.linspace(start, end, n + 1).to(zT)
    zs = solve(field, zT, times, block.rtol, block.atol, block.method, block.options).ys
    norms = torch.stack([field(t, z).flatten(1).norm(dim=1) for t, z in zip(times, zs)])  # (n+1, batch)
    dt = (end - start) / n
    integral = dt * (norms[1:] + norms[:-1]).sum(0) / 2
    return integral.mean()
