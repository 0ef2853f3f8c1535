"""Input perturbations for robustness tests: Gaussian noise, FGSM, PGD (L∞ / L2, with
expectation over transformation for random models), SPSA (L∞ / L2), and APGD and Square from the
adversarial-robustness-toolbox (ART) as independent implementations.

Every attack is a small frozen dataclass called as ``attack(model, x, y) -> x_adv`` on a batch of
images in the valid pixel range (``clip``, [0, 1] by default; inputs outside it are an error, not
silently clipped) and returns perturbed images in that range. Attacks run the model in eval mode and restore its train/eval mode afterwards; gradients
are taken with respect to the input only (``torch.autograd.grad``), so the parameters and their
``.grad`` are left untouched. Gradients flow through exactly the forward computation the model
uses (for an ODE-net: its solver, method and step size). Random draws (noise, random starts,
SPSA directions) come from a generator seeded by the attack's ``seed``, so results are
reproducible and independent of the global RNG (ART draws from numpy's and Python's global
generators: the ART attacks seed them with ``seed`` and restore their state afterwards).

:func:`robust_accuracy` runs an attack over a data set (optionally crafting the examples on a
``source`` model: a transfer attack) and returns the accuracy on the perturbed inputs.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, fields, is_dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm import tqdm

from .models.modes import eval_mode

__all__ = [
    "APGD",
    "FGSM",
    "PGD",
    "SPSA",
    "Square",
    "ARTAttack",
    "Attack",
    "art_classifier",
    "gaussian_perturbation",
    "Clean",
    "GaussianNoise",
    "robust_accuracy",
]

NORMS = ("linf", "l2")


def _check_epsilon(eps: float, what: str = "eps") -> None:
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"{what} must be a finite number >= 0 (the radius of the perturbation ball), got {eps!r}")


def _check_clip(clip: tuple[float, float]) -> None:
    lo, hi = clip
    if not lo < hi:
        raise ValueError(f"clip must be (low, high) with low < high, e.g. (0.0, 1.0) for images in [0, 1]; got {clip!r}")


def _check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; use one of {NORMS} ('linf' for L-infinity, 'l2' for Euclidean)")


def _check_positive_int(value: int, what: str) -> None:
    if not (isinstance(value, int) and value >= 1):
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")


def input_gradient(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Gradient of the summed cross-entropy of ``model(x)`` with respect to ``x`` only."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def _flat_norm(v: Tensor) -> Tensor:
    """Per-example L2 norm, shaped to broadcast against ``v``."""
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


def project(delta: Tensor, eps: float, norm: str) -> Tensor:
    """Project perturbations ``delta`` (one per example) onto the ``norm`` ball of radius ``eps``."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    scale = (eps / _flat_norm(delta).clamp_min(1e-12)).clamp(max=1.0)
    return delta * scale


def check_inputs_in_range(x: Tensor, clip: tuple[float, float], attack: str) -> None:
    """Inputs outside ``clip`` would be silently clipped into it: a clear error instead."""
    if not x.numel():
        return
    lo, hi = x.min().item(), x.max().item()
    if not (clip[0] <= lo and hi <= clip[1]):  # also catches NaN
        raise ValueError(
            f"inputs lie in [{lo:.4g}, {hi:.4g}] but {attack} keeps its outputs in [{clip[0]:g}, {clip[1]:g}] "
            f"and would clip them; pass clip=(low, high) matching the data's valid range "
            f"(for images normalised by mean m and std s: ((0 - m) / s, (1 - m) / s))"
        )


class Attack:
    """Base class: ``attack(model, x, y)`` returns perturbed inputs in the valid range.

    A subclass implements :meth:`perturb`; it may be a frozen dataclass (as the attacks here) or a
    plain class. An attack with a ``clip`` attribute rejects inputs outside it; one with a
    ``seed`` attribute gets fresh random draws for every batch of :func:`robust_accuracy`.
    """

    label: str = "attack"

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        clip = getattr(self, "clip", None)
        if clip is not None:
            check_inputs_in_range(x, clip, self.label)
        with eval_mode(model):
            return self.perturb(model, x.detach(), y)

    def for_batch(self, index: int) -> Attack:
        """The attack to run on batch ``index`` of a data set: its ``seed`` offset by the index, so
        every batch gets fresh random draws and the result stays reproducible (unchanged if the
        attack has no ``seed``)."""
        if not index or not hasattr(self, "seed"):
            return self
        seed = self.seed + 1_000_003 * index  # type: ignore[attr-defined]
        if is_dataclass(self) and any(f.name == "seed" for f in fields(self)):
            return replace(self, seed=seed)
        clone = copy.copy(self)
        clone.seed = seed  # type: ignore[attr-defined]
        return clone

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:  # pragma: no cover - abstract
        """The perturbed inputs for ``x`` (detached, in range), the model already in eval mode."""
        raise NotImplementedError

    def _generator(self, x: Tensor, seed: int) -> torch.Generator:
        return torch.Generator(device=x.device).manual_seed(seed)


@dataclass(frozen=True)
class Clean(Attack):
    """No perturbation (the clean accuracy row)."""

    @property
    def label(self) -> str:  # type: ignore[override]
        return "clean"

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return x


def gaussian_perturbation(x: Tensor, scale: float | Tensor, generator: torch.Generator, clip: tuple[float, float]) -> Tensor:
    """``x + scale · N(0, I)`` clipped to ``clip``; ``scale`` is one standard deviation or one per
    example (shaped to broadcast). The one noise draw behind :class:`GaussianNoise` and
    :class:`~nodekit.training.hooks.GaussianAugmentation`."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + scale * noise).clamp(*clip)


@dataclass(frozen=True)
class GaussianNoise(Attack):
    """Additive Gaussian noise with standard deviation ``sigma`` on the 0–255 pixel scale,
    for images stored in [0, 1] (so the noise added is ``sigma / 255 · N(0, 1)``), then clipped
    to ``clip``. Yan et al.'s σ = 50, 75, 100 on MNIST."""

    sigma: float
    clip: tuple[float, float] = (0.0, 1.0)
    pixel_scale: float = 255.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_epsilon(self.sigma, "sigma")
        _check_clip(self.clip)

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"Gaussian σ={self.sigma:g}"

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        g = generator if generator is not None else self._generator(x, self.seed)
        return gaussian_perturbation(x, self.sigma / self.pixel_scale, g, self.clip)


@dataclass(frozen=True)
class FGSM(Attack):
    """Fast gradient sign method (Goodfellow et al.): one step ``x + eps · sign(∇ₓ loss)``, clipped."""

    eps: float
    clip: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        _check_epsilon(self.eps)
        _check_clip(self.clip)

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"FGSM-{self.eps:g}"

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        grad = input_gradient(model, x, y)
        return (x + self.eps * grad.sign()).clamp(*self.clip).detach()


@dataclass(frozen=True)
class PGD(Attack):
    """Projected gradient descent (Madry et al.) in the L∞ or L2 ball of radius ``eps``.

    ``steps`` ascent steps of size ``step_size`` (default ``2.5 · eps / steps``) on the
    cross-entropy, each followed by projection onto the ball and the valid range; with
    ``random_start`` the search starts from a uniform point of the ball (L∞) or a random
    direction at a uniform radius (L2). With ``restarts`` > 1 the attack is repeated from new
    random starts and, per example, the first perturbation that fools the model (else the last)
    is kept.

    ``eot`` > 1 is *expectation over transformation* (Athalye et al. 2018) for random models, such
    as a neural SDE that draws fresh Brownian noise on every forward pass: each ascent step follows
    the mean of ``eot`` independent gradients, computed in one forward and backward pass on the
    batch repeated ``eot`` times (so ``eot`` times the memory), which estimates the gradient of the
    expected loss. Against a random model a single-draw gradient is itself random and often points
    the wrong way, so plain PGD can make the model look robust when it is not; AutoAttack's
    ``version='rand'`` uses 20 draws. The check of which examples are fooled stays one forward pass.
    With ``eot=1`` the attack is plain PGD.
    """

    eps: float
    norm: str = "linf"
    steps: int = 40
    step_size: float | None = None
    random_start: bool = True
    restarts: int = 1
    eot: int = 1
    clip: tuple[float, float] = (0.0, 1.0)
    seed: int = 0

    def __post_init__(self) -> None:
        _check_epsilon(self.eps)
        _check_norm(self.norm)
        _check_positive_int(self.steps, "steps")
        _check_positive_int(self.restarts, "restarts")
        _check_positive_int(self.eot, "eot (the gradient draws averaged per step; 1 for a deterministic model)")
        if self.step_size is not None:
            _check_epsilon(self.step_size, "step_size")
        _check_clip(self.clip)

    @property
    def alpha(self) -> float:
        """The step size actually used."""
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps

    @property
    def label(self) -> str:  # type: ignore[override]
        suffix = "" if self.norm == "linf" else " (L2)"
        if self.eot > 1:
            suffix += f" EOT-{self.eot}"
        return f"PGD-{self.eps:g}{suffix}"

    def _random_start(self, x: Tensor, g: torch.Generator) -> Tensor:
        if self.norm == "linf":
            return (torch.rand(x.shape, generator=g, device=x.device, dtype=x.dtype) * 2 - 1) * self.eps
        direction = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
        direction = direction / _flat_norm(direction).clamp_min(1e-12)
        radius = torch.rand(x.shape[0], generator=g, device=x.device, dtype=x.dtype).view(-1, *([1] * (x.dim() - 1)))
        return direction * radius * self.eps

    def _gradient(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """The input gradient of the cross-entropy; with ``eot`` > 1 the mean of ``eot`` draws,
        from one pass on the batch repeated ``eot`` times (copy ``k`` of example ``i`` at row
        ``k · len(x) + i``)."""
        if self.eot == 1:
            return input_gradient(model, x, y)
        grads = input_gradient(model, x.repeat(self.eot, *([1] * (x.dim() - 1))), y.repeat(self.eot))
        return grads.view(self.eot, *x.shape).mean(0)

    def _ascent(self, grad: Tensor) -> Tensor:
        if self.norm == "linf":
            return self.alpha * grad.sign()
        return self.alpha * grad / _flat_norm(grad).clamp_min(1e-12)

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        g = self._generator(x, self.seed)
        best = x.clone()
        fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for _ in range(self.restarts):
            idx = torch.nonzero(~fooled)[:, 0]  # restarts only attack the examples not fooled yet
            x0, y0 = x[idx], y[idx]
            delta = self._random_start(x0, g) if self.random_start else torch.zeros_like(x0)
            x_adv = (x0 + delta).clamp(*self.clip)
            for _ in range(self.steps):
                grad = self._gradient(model, x_adv, y0)
                delta = project(x_adv + self._ascent(grad) - x0, self.eps, self.norm)
                x_adv = (x0 + delta).clamp(*self.clip).detach()
            with torch.no_grad():
                wrong = model(x_adv).argmax(1) != y0
            best[idx] = x_adv
            fooled[idx] = wrong
            if bool(fooled.all()):
                break
        return best


@dataclass(frozen=True)
class SPSA(Attack):
    """Gradient-free attack of Uesato et al. (2018) in the L∞ or L2 ball of radius ``eps``:
    simultaneous-perturbation estimates of the gradient of the margin loss, Adam ascent, projection
    onto the ball (clamping each pixel for L∞, rescaling the perturbation for L2) and the valid range.

    Each step draws ``samples`` Rademacher directions ``v`` (in antithetic pairs) and estimates the
    gradient from ``(loss(x + δv) − loss(x − δv)) / 2δ · v``; it only needs the model's outputs,
    so it is blind to gradient masking. Per example the first perturbation that fools the model is
    kept. Adam moves every pixel by about ``lr`` a step, an L2 step of about ``lr · √d`` for ``d``
    pixels: for the L2 ball size ``lr`` against ``eps / √d`` (a perturbation spread evenly), not ``eps``.
    """

    eps: float
    norm: str = "linf"
    steps: int = 20
    samples: int = 32
    delta: float = 0.01
    lr: float = 0.01
    clip: tuple[float, float] = (0.0, 1.0)
    seed: int = 0

    def __post_init__(self) -> None:
        _check_epsilon(self.eps)
        _check_norm(self.norm)
        _check_positive_int(self.steps, "steps")
        _check_positive_int(self.samples, "samples")
        if self.samples % 2:
            raise ValueError(f"samples must be even (directions come in ± pairs), got {self.samples}")
        _check_epsilon(self.delta, "delta")
        _check_epsilon(self.lr, "lr")
        _check_clip(self.clip)

    @property
    def label(self) -> str:  # type: ignore[override]
        suffix = "" if self.norm == "linf" else " (L2)"
        return f"SPSA-{self.eps:g}{suffix}"

    @staticmethod
    def margin(logits: Tensor, y: Tensor) -> Tensor:
        """Largest wrong logit minus the true one (positive ⇔ misclassified)."""
        true = logits.gather(1, y[:, None])[:, 0]
        others = logits.scatter(1, y[:, None], float("-inf"))
        return others.max(1).values - true

    @torch.no_grad()
    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        g = self._generator(x, self.seed)
        n, half = len(x), self.samples // 2
        delta = torch.zeros_like(x)
        m, v = torch.zeros_like(x), torch.zeros_like(x)
        beta1, beta2 = 0.9, 0.999
        best = x.clone()
        fooled = model(x).argmax(1) != y
        for step in range(1, self.steps + 1):
            signs = torch.randint(0, 2, (n, half, *x.shape[1:]), generator=g, device=x.device).to(x.dtype) * 2 - 1
            signs = torch.cat([signs, -signs], dim=1)  # (n, samples, ...)
            probes = (x + delta)[:, None] + self.delta * signs
            logits = model(probes.clamp(*self.clip).flatten(0, 1))
            loss = self.margin(logits, y.repeat_interleave(self.samples)).view(n, self.samples)
            shape = (n, self.samples, *([1] * (x.dim() - 1)))
            grad = (loss.view(shape) * signs).mean(1) / self.delta
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad * grad
            m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
            delta = project(delta + self.lr * m_hat / (v_hat.sqrt() + 1e-8), self.eps, self.norm)
            delta = (x + delta).clamp(*self.clip) - x
            x_adv = x + delta
            now = (model(x_adv).argmax(1) != y) & ~fooled
            best[now] = x_adv[now]
            fooled |= now
            if bool(fooled.all()):
                break
        best[~fooled] = (x + delta)[~fooled]
        return best


ART_PACKAGE = "adversarial-robustness-toolbox==1.20.1"


@contextlib.contextmanager
def _seeded_global_rngs(seed: int) -> Iterator[None]:
    """Seed numpy's and Python's global generators (ART draws from them); restore them afterwards."""
    np_state, py_state = np.random.get_state(), random.getstate()
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


@contextlib.contextmanager
def _frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Stop gradients reaching the parameters (ART calls ``backward()`` and ``zero_grad()``) and
    restore their ``requires_grad`` and ``.grad`` afterwards."""
    saved = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    for p, _, _ in saved:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, requires_grad, grad in saved:
            p.requires_grad_(requires_grad)
            p.grad = grad


class _NaNForNonFiniteRows(nn.Module):
    """``model``, except that rows of the batch holding NaN or Inf get NaN logits without being run.

    ART's L2 Square proposes 0/0 candidates and discards them by their NaN loss. A CNN turns NaN
    inputs into NaN logits by itself, but an ODE block's solver rejects a non-finite state.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        finite = torch.isfinite(x).flatten(1).all(1)
        if bool(finite.all()):
            return self.model(x)
        shape = (-1, *([1] * (x.dim() - 1)))
        out = self.model(torch.where(finite.view(shape), x, torch.zeros_like(x)))
        return torch.where(finite.view(-1, 1), out, torch.full_like(out, float("nan")))


def art_classifier(model: nn.Module, x: Tensor, clip: tuple[float, float]) -> object:
    """ART's ``PyTorchClassifier`` wrapping ``model`` for inputs shaped like ``x`` in ``clip``.

    Its loss is the cross-entropy *summed* over the batch: with ART's default mean, per-example
    gradients shrink with the batch size, and ART's L2 steps (``g / (‖g‖ + 1e-7)``) then stall on
    confidently classified examples (APGD-CE L2 was 6–8 points weaker than PGD at batch 200).
    """
    try:
        with warnings.catch_warnings():
            # ART's attacks import tqdm.auto, which warns in a Jupyter kernel without ipywidgets; the
            # attacks here run ART with its progress bars off, so the warning is noise in a chapter
            warnings.filterwarnings("ignore", message="IProgress not found")
            import art.attacks.evasion  # noqa: F401
            from art.estimators.classification import PyTorchClassifier
    except ImportError as error:
        raise ImportError(
            f"this attack runs the adversarial-robustness-toolbox (ART), which is not installed: "
            f"pip install {ART_PACKAGE} (it is in nodekit's dev extra: pip install -e '.[dev]')"
        ) from error
    with torch.no_grad():
        classes = model(x[:1]).shape[1]
    return PyTorchClassifier(
        model=_NaNForNonFiniteRows(model), loss=nn.CrossEntropyLoss(reduction="sum"), input_shape=tuple(x.shape[1:]), nb_classes=classes,
        clip_values=clip, device_type="gpu" if x.is_cuda else "cpu",
    )


class ARTAttack(Attack):
    """Base class of the attacks run by ART on the model wrapped by :func:`art_classifier`.

    A subclass sets ``eps``, ``norm``, ``clip`` and ``seed`` and builds the ART attack in
    :meth:`make`; the result is projected onto the ball and the valid range once more, so float32
    rounding in ART cannot leave it. ART passes float32 numpy arrays; the model runs on ``x``'s device.
    """

    eps: float
    norm: str
    clip: tuple[float, float]
    seed: int

    def make(self, classifier: object, batch_size: int) -> object:  # pragma: no cover - abstract
        """The ART attack object for ``classifier`` (an ART ``PyTorchClassifier``)."""
        raise NotImplementedError

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        if not len(x):
            return x.clone()
        # ART's L2 Square divides 0 by 0 on patches it then discards: silence numpy, check the result
        with _frozen_parameters(model), _seeded_global_rngs(self.seed), np.errstate(divide="ignore", invalid="ignore"):
            attack = self.make(art_classifier(model, x, self.clip), len(x))
            x_adv = attack.generate(x=x.detach().cpu().float().numpy(), y=y.detach().cpu().numpy())
        if not np.isfinite(x_adv).all():
            raise RuntimeError(f"ART's {type(attack).__name__} returned non-finite inputs; report this with its settings: {self}")
        x_adv = torch.from_numpy(x_adv).to(device=x.device, dtype=x.dtype)
        return (x + project(x_adv - x, self.eps, self.norm)).clamp(*self.clip)


def _art_norm(norm: str) -> float:
    return math.inf if norm == "linf" else 2


@dataclass(frozen=True)
class APGD(ARTAttack):
    """Auto-PGD of Croce & Hein (2020) from ART: PGD with momentum whose step size starts at
    ``2 · eps`` and halves when the loss stops rising, so there is no step size to tune.

    ``loss`` is ``"ce"`` (cross-entropy, APGD-CE) or ``"dlr"`` (difference of logits ratio,
    APGD-DLR, needs ≥ 3 classes); ``restarts`` random starts, keeping per example the first
    perturbation that fools the model.
    """

    eps: float
    norm: str = "linf"
    steps: int = 100
    restarts: int = 1
    loss: str = "ce"
    clip: tuple[float, float] = (0.0, 1.0)
    seed: int = 0

    def __post_init__(self) -> None:
        _check_epsilon(self.eps)
        _check_norm(self.norm)
        _check_positive_int(self.steps, "steps")
        _check_positive_int(self.restarts, "restarts")
        if self.loss not in ("ce", "dlr"):
            raise ValueError(f"unknown loss {self.loss!r}; use 'ce' (cross-entropy) or 'dlr' (difference of logits ratio)")
        _check_clip(self.clip)

    @property
    def label(self) -> str:  # type: ignore[override]
        suffix = "" if self.norm == "linf" else " (L2)"
        return f"APGD-{self.eps:g}{suffix}"

    def make(self, classifier: object, batch_size: int) -> object:
        from art.attacks.evasion import AutoProjectedGradientDescent

        return AutoProjectedGradientDescent(
            classifier, norm=_art_norm(self.norm), eps=self.eps, eps_step=2 * self.eps, max_iter=self.steps,
            nb_random_init=self.restarts, batch_size=batch_size, verbose=False,
            loss_type=None if self.loss == "ce" else "difference_logits_ratio",  # None: the classifier's summed CE
        )


@dataclass(frozen=True)
class Square(ARTAttack):
    """Square attack of Andriushchenko et al. (2020) from ART: a gradient-free random search that
    changes square patches of the image and keeps a change when the margin loss drops, using only
    the model's outputs (so it is blind to gradient masking).

    ``max_queries`` iterations (one model query per example each), a patch covering a fraction
    ``p_init`` of the image at first; ``restarts`` runs, per example keeping the first success.
    """

    eps: float
    norm: str = "linf"
    max_queries: int = 1000
    p_init: float = 0.8
    restarts: int = 1
    clip: tuple[float, float] = (0.0, 1.0)
    seed: int = 0

    def __post_init__(self) -> None:
        _check_epsilon(self.eps)
        _check_norm(self.norm)
        _check_positive_int(self.max_queries, "max_queries")
        _check_positive_int(self.restarts, "restarts")
        if not 0 < self.p_init <= 1:
            raise ValueError(f"p_init must be in (0, 1] (the fraction of the image a patch covers), got {self.p_init!r}")
        _check_clip(self.clip)

    @property
    def label(self) -> str:  # type: ignore[override]
        suffix = "" if self.norm == "linf" else " (L2)"
        return f"Square-{self.eps:g}{suffix}"

    def make(self, classifier: object, batch_size: int) -> object:
        from art.attacks.evasion import SquareAttack

        return SquareAttack(
            classifier, norm=_art_norm(self.norm), eps=self.eps, max_iter=self.max_queries, p_init=self.p_init,
            nb_restarts=self.restarts, batch_size=batch_size, verbose=False,
        )


def _as_dataset(data: Dataset | tuple[Tensor, Tensor]) -> Dataset:
    if isinstance(data, tuple):
        return TensorDataset(*data)
    return data


def robust_accuracy(
    model: nn.Module,
    data: Dataset | tuple[Tensor, Tensor],
    attack: Attack | None = None,
    *,
    source: nn.Module | None = None,
    batch_size: int = 250,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> float:
    """Accuracy of ``model`` on ``attack``-perturbed examples of ``data`` (clean if ``attack`` is None).

    ``data`` is a data set of ``(image, label)`` pairs or an ``(images, labels)`` tuple. With
    ``source`` the perturbations are crafted on ``source`` and evaluated on ``model`` (a transfer
    attack). Examples are attacked in batches of ``batch_size`` whatever the model's prediction,
    and the attack's randomness is seeded per batch, so the result is reproducible. Both models'
    train/eval modes are restored.
    """
    dataset = _as_dataset(data)
    attack = attack if attack is not None else Clean()
    crafter = source if source is not None else model
    loader = DataLoader(dataset, batch_size=batch_size)
    correct, seen = 0, 0
    desc = attack.label + (" (transfer)" if source is not None else "")
    with eval_mode(model, crafter):
        for i, (x, y) in enumerate(
            tqdm(loader, desc=desc, unit="batch", disable=not progress, mininterval=1.0, leave=False)
        ):
            x, y = x.to(device), y.to(device)
            x_adv = attack.for_batch(i)(crafter, x, y)
            with torch.no_grad():
                correct += (model(x_adv).argmax(1) == y).sum().item()
            seen += len(y)
    if not seen:
        raise ValueError("robust_accuracy got data with no examples: pass a data set or (images, labels) tuple "
                         "with at least one example")
    return correct / seen
