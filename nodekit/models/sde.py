"""Neural SDE blocks (Liu et al. 2019): ``dz = f(z) dt + g(z) dW``, solved by torchsde.

* :class:`DropoutDiffusion` — ``g(z) = σ f(z)`` with ``σ = √((1 − p)/p)``: dropout with *keep*
  probability ``p`` on a residual branch, read as a diffusion (seed 003, equation (8));
* :class:`MultiplicativeNoise` — ``g(z) = σ z`` (Liu et al.'s stability theorem; with a linear field,
  geometric Brownian motion);
* :class:`SDEBlock` — the state at ``t1`` from the block's input, by a fixed-step torchsde solver
  (reversible Heun and its adjoint by default), with reproducible noise: every forward pass draws a
  fresh Brownian motion from the block's own generator (:meth:`SDEBlock.reseed`, :func:`reseed`);
* :func:`dropout_residual` — the discrete model behind (8): a tied-weight residual net with dropout
  on its branch, ``z ← z + h f(z) ⊙ γ/p``;
* :func:`sde_blocks` / :func:`reseed` — find and reseed every SDE block of a model.

Noise is on in eval mode too: it is part of the model, not a training device. Each row of a batch
gets its own Brownian motion, so repeating an input ``k`` times in a batch gives ``k`` independent
draws (what :class:`~nodekit.models.averaging.MeanPrediction` and EOT attacks use).

**Itô or Stratonovich.** Reversible Heun (and midpoint, Heun) solve the *Stratonovich* SDE
``dz = f dt + g ∘ dW``; Euler–Maruyama the *Itô* one. For diagonal noise they differ by the drift
``½ g_i ∂g_i/∂z_i``: a Stratonovich solve of ``(f, g)`` is an Itô solve of ``(f + ½ g ∂g, g)``.
``sde_type`` says which one a block solves; the method must match it.
"""

from __future__ import annotations

import math
import torch
from torch import Tensor, nn

__all__ = ["DropoutDiffusion", "MultiplicativeNoise", "SDEBlock", "dropout_residual", "keep_to_sigma", "reseed",
           "sde_blocks"]

METHODS: dict[str, tuple[str, ...]] = {
    "stratonovich": ("reversible_heun", "midpoint", "heun", "milstein"),
    "ito": ("euler", "milstein", "srk"),
}
"""The fixed-step torchsde methods for diagonal noise, by the calculus they solve."""

ADJOINT_METHODS: dict[str, str] = {"reversible_heun": "adjoint_reversible_heun"}


def keep_to_sigma(keep: float) -> float:
    """``√((1 − p)/p)``: the standard deviation of dropout's multiplicative noise ``γ/p − 1``,
    ``γ ~ Bernoulli(p)``, for keep probability ``p``."""
    if not (isinstance(keep, (int, float)) and 0 < keep <= 1):
        raise ValueError(f"keep (the probability p that a unit is kept, 1 = no dropout) must lie in (0, 1], got {keep!r}")
    return math.sqrt((1 - keep) / keep)


class DropoutDiffusion(nn.Module):
    """``g(t, z) = σ f(t, z)``, ``σ = √((1 − p)/p)``: the diffusion that matches dropout with keep
    probability ``p`` on the residual branch ``f`` (diagonal noise). ``p = 1`` is no noise."""

    def __init__(self, keep: float) -> None:
        super().__init__()
        self.keep = float(keep)
        self.sigma = keep_to_sigma(keep)

    def forward(self, t: Tensor, z: Tensor, drift: Tensor) -> Tensor:
        return self.sigma * drift

    def extra_repr(self) -> str:
        return f"keep={self.keep:g}, sigma={self.sigma:.6g}"


class MultiplicativeNoise(nn.Module):
    """``g(t, z) = σ z``: with ``scalar=True`` one Brownian motion drives every coordinate
    (``dz = f dt + σ z dW``, ``W`` real: Liu et al.'s Theorem, seed 003's Theorem 6), otherwise
    each coordinate has its own (diagonal noise, ``dz_i = f_i dt + σ z_i dW_i``)."""

    def __init__(self, sigma: float, scalar: bool = False) -> None:
        super().__init__()
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"sigma (the noise level) must be a finite number >= 0, got {sigma!r}")
        self.sigma, self.noise_type = float(sigma), "scalar" if scalar else "diagonal"

    def forward(self, t: Tensor, z: Tensor, drift: Tensor) -> Tensor:
        g = self.sigma * z
        return g[..., None] if self.noise_type == "scalar" else g

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}, noise_type={self.noise_type!r}"


class _SDE(nn.Module):
    """torchsde's view of ``(field, diffusion)``: the diffusion's ``noise_type`` (diagonal unless it
    says otherwise), ``f`` evaluated once per ``f_and_g``."""

    def __init__(self, field: nn.Module, diffusion: nn.Module, sde_type: str) -> None:
        super().__init__()
        self.field, self.diffusion, self.sde_type = field, diffusion, sde_type
        self.noise_type = getattr(diffusion, "noise_type", "diagonal")
        self.nfe = 0

    def f(self, t: Tensor, z: Tensor) -> Tensor:
        self.nfe += 1
        return self.field(t, z)

    def g(self, t: Tensor, z: Tensor) -> Tensor:
        return self.diffusion(t, z, self.f(t, z))

    def f_and_g(self, t: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        drift = self.f(t, z)
        return drift, self.diffusion(t, z, drift)


class SDEBlock(nn.Module):
    """Stochastic layer: ``z(t1)`` of ``dz = f(t, z) dt + g(t, z, f) dW``, ``z(0)`` the input.

    ``field`` is any nodekit vector field ``f(t, z)`` on states ``(batch, dim)``; ``diffusion``
    (:class:`DropoutDiffusion`, :class:`MultiplicativeNoise`) gives ``g``. The solve uses
    torchsde's fixed-step ``method`` with step ``dt``: by default Euler–Maruyama on the Itô SDE,
    which is dropout's own limit (the noise of a step is drawn at its start); reversible Heun
    (``method="reversible_heun", sde_type="stratonovich"``) is offered but is unstable on
    contracting fields (:func:`~nodekit.measure.stochastic.reversible_heun_growth`). With
    ``adjoint=True`` gradients come from ``sdeint_adjoint`` (for reversible Heun its exact
    reversible adjoint), otherwise by backpropagation through the solver. ``last_nfe`` counts the
    drift evaluations of the latest forward solve.

    Every forward pass draws a new Brownian motion from a generator seeded by ``seed``;
    :meth:`reseed` restarts the sequence, so the same seed and the same calls give the same numbers.
    """

    def __init__(
        self, field: nn.Module, diffusion: nn.Module, t1: float = 10.0, dt: float = 0.25,
        method: str = "euler", sde_type: str = "ito", adjoint: bool = False, seed: int = 0,
    ) -> None:
        super().__init__()
        if sde_type not in METHODS:
            raise ValueError(f"unknown sde_type {sde_type!r}; use 'stratonovich' or 'ito'")
        if method not in METHODS[sde_type]:
            other = "ito" if sde_type == "stratonovich" else "stratonovich"
            hint = f" ({method!r} solves {other} SDEs: pass sde_type={other!r})" if method in METHODS[other] else ""
            raise ValueError(f"method {method!r} does not solve {sde_type} SDEs with diagonal noise{hint}; "
                             f"use one of {METHODS[sde_type]}")
        if not (math.isfinite(t1) and t1 > 0):
            raise ValueError(f"t1 (the integration time) must be > 0, got {t1!r}")
        if not (math.isfinite(dt) and 0 < dt <= t1):
            raise ValueError(f"dt (the fixed step) must lie in (0, t1 = {t1:g}], got {dt!r}")
        self.sde = _SDE(field, diffusion, sde_type)
        self.method, self.dt, self.adjoint, self.seed = method, float(dt), adjoint, int(seed)
        self.register_buffer("t", torch.tensor([0.0, float(t1)]), persistent=False)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.last_nfe: int | None = None

    @property
    def field(self) -> nn.Module:
        """The drift ``f``."""
        return self.sde.field

    @property
    def diffusion(self) -> nn.Module:
        """The diffusion ``g``."""
        return self.sde.diffusion

    @property
    def t1(self) -> float:
        """The end time."""
        return float(self.t[-1])

    def reseed(self, seed: int | None = None) -> SDEBlock:
        """Restart the block's Brownian motions from ``seed`` (default: the block's own)."""
        self.generator.manual_seed(self.seed if seed is None else int(seed))
        return self

    def brownian_motion(self, z: Tensor, ts: Tensor):
        """A fresh Brownian motion (of ``z``'s shape; ``(batch, 1)`` for scalar noise) on ``[ts[0], ts[-1]]`` from the block's generator."""
        import torchsde

        entropy = int(torch.randint(0, 2**62, (), generator=self.generator))
        size = (z.shape[0], 1) if self.sde.noise_type == "scalar" else tuple(z.shape)
        return torchsde.BrownianInterval(t0=float(ts[0]), t1=float(ts[-1]), size=size, dtype=z.dtype,
                                         device=z.device, entropy=entropy, dt=self.dt)

    def trajectory(self, z: Tensor, ts: Tensor, bm=None) -> Tensor:
        """The solution at the times ``ts`` (``ts[0]`` is the input's time), one new noise draw
        (or the Brownian motion ``bm``); shape ``(len(ts), *z.shape)``."""
        import torchsde

        if z.dim() != 2:
            raise ValueError(f"an SDE block's state must be (batch, dim), got shape {tuple(z.shape)}; flatten it first")
        bm = self.brownian_motion(z, ts) if bm is None else bm
        self.sde.nfe = 0
        if self.adjoint:
            out = torchsde.sdeint_adjoint(self.sde, z, ts, bm=bm, method=self.method, dt=self.dt,
                                          adjoint_method=ADJOINT_METHODS.get(self.method))
        else:
            out = torchsde.sdeint(self.sde, z, ts, bm=bm, method=self.method, dt=self.dt)
        self.last_nfe = self.sde.nfe
        return out

    def forward(self, z: Tensor) -> Tensor:
        return self.trajectory(z, self.t.to(z.dtype))[-1]

    def extra_repr(self) -> str:
        return (f"t1={self.t1:g}, dt={self.dt:g}, method={self.method!r}, sde_type={self.sde.sde_type!r}, "
                f"adjoint={self.adjoint}, seed={self.seed}")


def sde_blocks(model: nn.Module) -> list[SDEBlock]:
    """Every :class:`SDEBlock` inside ``model``."""
    return [m for m in model.modules() if isinstance(m, SDEBlock)]


def reseed(model: nn.Module, seed: int) -> nn.Module:
    """Restart the noise of every SDE block of ``model`` from ``seed`` (block ``i`` gets ``seed + i``):
    do it before an evaluation, so its numbers do not depend on what ran (or was cached) before."""
    blocks = sde_blocks(model)
    if not blocks:
        raise ValueError(f"reseed needs a model with an SDEBlock; {type(model).__name__} has none")
    for i, block in enumerate(blocks):
        block.reseed(seed + i)
    return model



def dropout_residual(field: nn.Module, z: Tensor, t1: float, steps: int, keep: float,
                     generator: torch.Generator) -> Tensor:
    """``steps`` residual steps ``z ← z + h f(z) ⊙ γ/p``, ``h = t1/steps``, ``γ ~ Bernoulli(p)`` drawn
    per coordinate and step from ``generator``: a tied-weight ResNet with dropout (keep probability
    ``p``) on its branch. Its step noise has standard deviation ``h σ |f|``, ``σ² = (1 − p)/p``; an
    Euler–Maruyama step of ``dz = f dt + s f dW`` has ``√h s |f|``: they match when ``σ² = s²/h``."""
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    keep_to_sigma(keep)
    h = t1 / steps
    t = z.new_zeros(())
    for _ in range(steps):
        mask = torch.bernoulli(torch.full(z.shape, keep, dtype=z.dtype, device=z.device), generator=generator)
        z = z + h * field(t, z) * mask / keep
    return z
