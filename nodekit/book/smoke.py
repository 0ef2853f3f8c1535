"""The smoke switch: ``NODEKIT_SMOKE=1`` runs a chapter's code paths at a size that only shows they run.

The ``full`` profile is meant for a GPU and paper-scale data, so it cannot be executed on a CI
machine; yet its code paths (other widths, the adjoint, other data sets, more models) break unnoticed
if nothing runs them. With ``NODEKIT_SMOKE=1`` :func:`~nodekit.book.provenance.start_chapter` passes
the chosen profile's settings through :func:`smoke_settings`, which caps every setting whose name
says it counts epochs (or names a first epoch), iterations, seeds, examples, attack steps, samples, queries or restarts
(:data:`SMOKE_CAPS`) and leaves architectures, solvers and tolerances alone. The provenance table
says which settings were capped. A smoke run's numbers mean nothing: run it with
``NODEKIT_CLAIMS=report`` so that claims are printed, not enforced.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

SMOKE_ENV = "NODEKIT_SMOKE"
"""The environment variable that switches smoke mode on (``1``) or off (``0`` or unset)."""

SMOKE_CAPS: tuple[tuple[str, int], ...] = (
    ("epochs", 1),
    ("epoch", 0),
    ("iterations", 3),
    ("seeds", 2),
    ("steps", 2),
    ("samples", 4),
    ("queries", 20),
    ("restarts", 1),
    ("grid", 8),
    ("n", 24),
)
"""``(word, cap)``: a setting whose name is ``word``, or has ``word`` as one of its ``_``-separated
parts (``pgd_steps``, ``n_attack``, ``pair_seeds``), is capped at ``cap``; the first match wins.
Integers are capped, sequences of integers element-wise, dicts recursively; anything else is kept."""


def smoke_enabled() -> bool:
    """Whether ``$NODEKIT_SMOKE`` asks for smoke mode; a value other than 0 or 1 is an error."""
    value = os.environ.get(SMOKE_ENV, "0").strip()
    if value not in ("0", "1", ""):
        raise ValueError(f"{SMOKE_ENV}={value!r}: use 1 (cap every chapter's sizes to a smoke test) or 0 (off)")
    return value == "1"


def cap_for(name: str) -> int | None:
    """The cap of :data:`SMOKE_CAPS` that applies to a setting called ``name``, or None."""
    parts = name.lower().split("_")
    for word, cap in SMOKE_CAPS:
        if word in parts:
            return cap
    return None


def smoke_settings(settings: Mapping[str, Any], prefix: str = "") -> tuple[dict[str, Any], list[str]]:
    """Return ``settings`` with every counted size capped (see :data:`SMOKE_CAPS`) and a list of the
    changes as ``"name: old -> new"`` (nested dicts are named ``outer.inner``).

    >>> smoke_settings(dict(epochs=100, width=64, pgd_steps=(20, 1000), spsa=dict(samples=128)))[0]
    {'epochs': 1, 'width': 64, 'pgd_steps': (2, 2), 'spsa': {'samples': 4}}
    """
    capped: dict[str, Any] = {}
    changes: list[str] = []
    for name, value in settings.items():
        if isinstance(value, Mapping):
            capped[name], inner = smoke_settings(value, prefix=f"{prefix}{name}.")
            changes += inner
            continue
        cap = cap_for(name)
        new = value if cap is None else _capped(value, cap)
        if new != value:
            changes.append(f"{prefix}{name}: {value!r} -> {new!r}")
        capped[name] = new
    return capped, changes


def _capped(value: Any, cap: int) -> Any:
    """``min(value, cap)`` for an int, element-wise for a list or tuple of ints; other values as they are."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return min(value, cap)
    if isinstance(value, Sequence) and not isinstance(value, str) and value and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return type(value)(min(v, cap) for v in value)
    return value
