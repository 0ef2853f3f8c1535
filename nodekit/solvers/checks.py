"""Input checking for the solvers, in one place."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..errors import NonFiniteStateError

VectorField = Callable[[Tensor, Tensor], Tensor]


def check_state(y0: Tensor) -> Tensor:
    """``y0`` must be a finite real floating-point tensor."""
    if isinstance(y0, (tuple, list)) and any(isinstance(part, Tensor) for part in y0):
        raise TypeError(
            f"y0 must be one tensor, got a {type(y0).__name__} of {len(y0)} tensors (torchdiffeq's tuple "
            "states are not supported); solve them as one flat state, "
            "torch.cat([p.reshape(-1) for p in y0]), with a func that splits y back into the parts "
            "(torch.split, then reshape) and returns their derivatives concatenated the same way"
        )
    if not isinstance(y0, Tensor):
        raise TypeError(
            f"y0 must be a torch.Tensor, got {type(y0).__name__}; "
            "wrap it with torch.as_tensor(y0, dtype=torch.float32)"
        )
    if y0.is_complex():
        raise TypeError(
            f"complex states are not supported (dtype {y0.dtype}); solve the real and imaginary parts "
            "as one real state of twice the size, torch.view_as_real(y0), with a func that returns "
            "torch.view_as_real(f(t, torch.view_as_complex(y))); torch.view_as_complex(ys) is the solution"
        )
    if not y0.is_floating_point():
        raise TypeError(f"y0 must be a floating-point tensor, got dtype {y0.dtype}; use y0.float()")
    if not torch.isfinite(y0).all():
        raise NonFiniteStateError("y0 contains NaN or Inf values; clean the initial state first")
    return y0


def check_times(t: Tensor | Sequence[float], y0: Tensor) -> Tensor:
    """``t`` must be a 1-D, strictly monotonic, finite tensor of at least one time."""
    if not isinstance(t, Tensor):
        t = torch.as_tensor(t, dtype=y0.dtype, device=y0.device)
    if not t.is_floating_point():
        t = t.to(y0.dtype)
    t = t.to(y0.device)
    if t.dim() != 1:
        raise ValueError(
            f"t must be a 1-D tensor of output times, got shape {tuple(t.shape)}; "
            "for a single interval pass torch.tensor([t0, t1])"
        )
    if len(t) == 0:
        raise ValueError("t needs at least one time (the start), got none")
    if not torch.isfinite(t).all():
        raise ValueError("t contains NaN or Inf values")
    diffs = t[1:] - t[:-1]
    if not ((diffs > 0).all() or (diffs < 0).all()):
        bad = int(torch.nonzero(diffs * torch.sign(diffs[0]) <= 0)[0]) if diffs[0] != 0 else 0
        raise ValueError(
            "t must be strictly increasing or strictly decreasing, but "
            f"t[{bad}]={t[bad].item():g} and t[{bad + 1}]={t[bad + 1].item():g} break the order; "
            "sort the output times (and drop duplicates), e.g. torch.unique(t)"
        )
    return t


def check_option(
    name: str, value: object, accepted: str, valid: Callable[[float], bool], integer: bool = False, hint: str = ""
) -> None:
    """Raise a ValueError naming ``options[name]``, its ``value`` and the ``accepted`` values unless
    ``value`` is a real number (an integer if ``integer``) for which ``valid`` holds."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not valid(float(value)):
        raise ValueError(f"options[{name!r}] must be {accepted}, got {value!r}{hint}")


def _broadcast(*shapes: torch.Size) -> torch.Size | None:
    """The shape that ``shapes`` broadcast to, or None if they do not."""
    try:
        return torch.broadcast_shapes(*shapes)
    except RuntimeError:
        return None


def check_tolerances(rtol: float | Tensor, atol: float | Tensor) -> tuple[float | Tensor, float | Tensor]:
    """Non-negative ``rtol`` and ``atol``, not both zero anywhere: floats, or tensors of per-element
    tolerances (single-element tensors become floats; the others are checked against the state by
    :func:`tolerance_for_state`)."""
    rtol, atol = (
        tol.detach() if isinstance(tol, Tensor) and tol.numel() > 1 else float(tol) for tol in (rtol, atol)
    )
    r, a = (torch.as_tensor(tol, dtype=torch.float64) for tol in (rtol, atol))
    if _broadcast(r.shape, a.shape) is None:
        raise ValueError(
            f"rtol of shape {tuple(r.shape)} and atol of shape {tuple(a.shape)} do not broadcast together; "
            "per-element tolerances must broadcast to y0's shape"
        )
    if not bool(((r >= 0) & (a >= 0) & (r + a > 0)).all()):
        raise ValueError(f"rtol and atol must be non-negative and not both zero, got {rtol}, {atol}")
    return rtol, atol


def tolerance_for_state(name: str, tol: float | Tensor, y0: Tensor) -> float | Tensor:
    """A per-element tolerance, checked to broadcast to ``y0``'s shape and moved to its dtype and device."""
    if isinstance(tol, float):
        return tol
    if _broadcast(tol.shape, y0.shape) != y0.shape:
        raise ValueError(
            f"{name} of shape {tuple(tol.shape)} does not broadcast to y0's shape {tuple(y0.shape)}; "
            f"pass a float, or per-element {name} as a tensor that broadcasts to y0"
        )
    return tol.to(y0)


def checked_field(
    func: VectorField, y0: Tensor, t0: Tensor, t_shown: float | None = None
) -> tuple[VectorField, Tensor]:
    """Evaluate ``func`` once at the start, check its output, and return it with ``f(t0, y0)``.

    ``t_shown`` is the start time as the caller knows it (``t0`` is negated for solves
    backwards in time), for the error message.
    """
    if not callable(func):
        raise TypeError(f"func must be callable as func(t, y), got {type(func).__name__}")
    f0 = func(t0, y0)
    if not isinstance(f0, Tensor):
        raise TypeError(f"func(t, y) must return a tensor, got {type(f0).__name__}")
    if f0.shape != y0.shape:
        raise ValueError(
            f"func(t, y) returned shape {tuple(f0.shape)} but y0 has shape {tuple(y0.shape)}; "
            "the vector field must return dy/dt with the same shape as the state"
        )
    if f0.dtype != y0.dtype:
        raise TypeError(
            f"func(t, y) returned dtype {f0.dtype} but y0 has dtype {y0.dtype}; "
            "make the field's parameters and the state the same dtype (e.g. model.double())"
        )
    if not torch.isfinite(f0).all():
        start = t0.item() if t_shown is None else t_shown
        raise NonFiniteStateError(
            f"func(t, y) returned NaN or Inf at t={start:g}, the start of the solve; "
            "check the vector field and the scale of y0"
        )
    return func, f0


def reversed_field(func: VectorField) -> VectorField:
    """The field of s = -t, so that a solve backwards in time runs forwards in s."""

    def field(s: Tensor, y: Tensor) -> Tensor:
        return -func(-s, y)

    return field


def steps_for_interval(span: float, step_size: float | None) -> int:
    """Number of equal steps no longer than ``step_size`` that cover ``span``."""
    if step_size is None:
        return 1
    # The tiny relative slack keeps e.g. span 1.0, step 0.1 at 10 steps despite rounding.
    return max(1, math.ceil(abs(span) / step_size * (1 - 1e-9)))


def raise_non_finite(t_start: float, t_end: float) -> None:
    raise NonFiniteStateError(
        f"the state became NaN or Inf between t={t_start:g} and t={t_end:g}; the dynamics may "
        "be unstable or the step too large: try a smaller step_size, an adaptive method "
        "(method='dopri5'), a shorter time span, or normalise the inputs"
    )
