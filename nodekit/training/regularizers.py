"""Regularisers for :func:`nodekit.training.loop.fit`: terms added to the loss of every training batch.

* :func:`steady_state_penalty` / :class:`SteadyStateRegularizer` — TisODE's steady-state term
  (Yan et al. 2020), ``∫_T^{T+ΔT} ‖f(z(t))‖ dt`` on the (perturbed) training batch;
* :class:`LyapunovRegularizer` — SODEF's terms (Kang et al. 2021): :func:`equilibrium_penalty`
  (features at equilibria), :func:`diagonal_penalty` (negative Jacobian diagonal) and
  :func:`gershgorin_penalty` (strict diagonal dominance, :func:`gershgorin_margin`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..measure.stability import jacobians
from ..models.classifiers import ODENet
from ..solvers import solve

__all__ = [
    "LyapunovRegularizer", "SteadyStateRegularizer", "diagonal_penalty", "equilibrium_penalty", "gershgorin_margin",
    "gershgorin_penalty", "steady_state_penalty",
]


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


# --------------------------------------------------------------------------------------------- #
# SODEF's stability regularisers (Kang et al. 2021, loss (7); constants of their released code)
# --------------------------------------------------------------------------------------------- #


def equilibrium_penalty(values: Tensor, scale: float = 50.0) -> Tensor:
    """``mean((scale · f(z₀))²)`` over the batch and the coordinates: small where the features ``z₀``
    are (near) equilibria of the field (``values = f(z₀)``)."""
    return (scale * values).pow(2).mean()


def gershgorin_margin(jacobian: Tensor) -> Tensor:
    """Per row ``i`` of each Jacobian, ``Σ_{j≠i} |J_ij| − |J_ii|`` (``(n, d, d)`` → ``(n, d)``):
    negative for every row ⇔ ``J`` is strictly diagonally dominant (Gershgorin's discs then miss 0)."""
    diagonal = torch.diagonal(jacobian, dim1=-2, dim2=-1).abs()
    return jacobian.abs().sum(-1) - 2 * diagonal


def diagonal_penalty(jacobian: Tensor, shift: float = 1.0, rate: float = 1.0) -> Tensor:
    """``mean(exp(rate · (J_ii + shift)))``: pushes every diagonal entry of the Jacobians negative."""
    return torch.exp(rate * (torch.diagonal(jacobian, dim1=-2, dim2=-1) + shift)).mean()


def gershgorin_penalty(jacobian: Tensor, shift: float = 1.0, rate: float = 0.1) -> Tensor:
    """``mean(exp(rate · (Σ_{j≠i}|J_ij| − |J_ii| + shift)))``: pushes every row towards strict
    diagonal dominance (see :func:`gershgorin_margin`)."""
    return torch.exp(rate * (gershgorin_margin(jacobian) + shift)).mean()


@dataclass(frozen=True)
class LyapunovRegularizer:
    """SODEF's phase-2 objective on a batch of features ``z₀`` (the model's ``field`` at ``z₀``):

    ``equilibrium · mean((50 f(z₀))²) + diagonal · mean(exp(J_ii + 1)) + dominance · mean(exp(0.1 (Σ_{j≠i}|J_ij| − |J_ii| + 1)))``

    with ``J = ∂f/∂z`` at the first ``samples`` features of the (shuffled) batch, by
    ``torch.func.jacrev``/``vmap``. The defaults are the released code's (weights 0.2, 10, 10 and
    the scale, shifts and rates above); Kang et al.'s paper writes the same three terms with weights
    1, 0.05, 0.05. Small ⇔ the features sit near equilibria whose Jacobians have negative diagonals
    and are diagonally dominant, i.e. (Gershgorin) Hurwitz: asymptotically stable equilibria.
    """

    equilibrium: float = 0.2
    diagonal: float = 10.0
    dominance: float = 10.0
    scale: float = 50.0
    shift: float = 1.0
    diagonal_rate: float = 1.0
    dominance_rate: float = 0.1
    samples: int = 8

    def __post_init__(self) -> None:
        if min(self.equilibrium, self.diagonal, self.dominance) < 0:
            raise ValueError(f"weights must be >= 0, got {self.equilibrium}, {self.diagonal}, {self.dominance}")
        if self.samples < 1:
            raise ValueError(f"samples (features whose Jacobian is penalised per batch) must be >= 1, got {self.samples}")

    def terms(self, field: nn.Module, z: Tensor) -> dict[str, Tensor]:
        """The three unweighted terms at the features ``z``."""
        jac = jacobians(field, z[: self.samples])
        return {
            "equilibrium": equilibrium_penalty(field(z.new_zeros(()), z), self.scale),
            "diagonal": diagonal_penalty(jac, self.shift, self.diagonal_rate),
            "dominance": gershgorin_penalty(jac, self.shift, self.dominance_rate),
        }

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, epoch: int) -> Tensor:
        field = getattr(model, "field", None)
        if field is None:
            raise ValueError("LyapunovRegularizer needs a model with a `field` attribute (the ODE's vector field), "
                             f"got a {type(model).__name__}; train a nodekit.models.sodef.FeatureStage")
        t = self.terms(field, x)
        return self.equilibrium * t["equilibrium"] + self.diagonal * t["diagonal"] + self.dominance * t["dominance"]
