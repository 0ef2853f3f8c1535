"""Regularisers for :func:`nodekit.training.loop.fit`: terms added to the loss of every training batch.

* :func:`steady_state_penalty` / :class:`SteadyStateRegularizer` — TisODE's steady-state term
  (Yan et al. 2020), ``∫_T^{T+ΔT} ‖f(z(t))‖ dt`` on the (perturbed) training batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..models.classifiers import ODENet
from ..solvers import solve

__all__ = ["SteadyStateRegularizer", "steady_state_penalty"]


def _check_window(window: tuple[float, float]) -> tuple[float, float]:
    start, end = window
    if not 0 <= start < end:
        raise ValueError(f"window must be (T, T + ΔT) with 0 <= T < T + ΔT, e.g. (1.0, 1.05); got {window}")
    return start, end


def steady_state_penalty(
    model: ODENet, x: Tensor | None = None, window: tuple[float, float] = (1.0, 1.05)
) -> Tensor:
    """TisODE's steady-state regulariser: mean over the batch of ``∫_T^{T+ΔT} ‖f(z(t))‖₂ dt``.

    ``z`` starts at the encoder's features of ``x`` (in training: the perturbed batch) and is
    solved to ``T = window[0]`` with the block's solver; with ``x=None`` the features ``z(T)`` of
    the model's last forward pass are reused (a :class:`~nodekit.models.classifiers.TisODENet` whose block ends at ``T``).
    The flow then continues to ``T + ΔT = window[1]`` with the same method and step, and the
    integral of the field's per-example norm is taken by the trapezoidal rule on that grid. Penalising it pushes the features towards steady states, so
    that small perturbations of the input cannot be amplified by the flow beyond time T.
    """
    start, end = _check_window(window)
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


@dataclass(frozen=True)
class SteadyStateRegularizer:
    """``weight · ∫_T^{T+ΔT} ‖f(z(t))‖ dt`` on the (perturbed) training batch, from epoch
    ``from_epoch`` on (0-based); the released TisODE uses weight 0.01, window (1, 1.05), epoch 5.

    With a :class:`~nodekit.models.classifiers.TisODENet` the features of the batch's forward pass are reused.
    """

    weight: float = 0.01
    window: tuple[float, float] = (1.0, 1.05)
    from_epoch: int = 5

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"weight must be >= 0, got {self.weight}")
        _check_window(self.window)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, epoch: int) -> Tensor:
        if epoch < self.from_epoch or self.weight == 0:
            return x.new_zeros(())
        reuse = getattr(model, "last_state", None) is not None
        return self.weight * steady_state_penalty(model, None if reuse else x, self.window)  # type: ignore[arg-type]
