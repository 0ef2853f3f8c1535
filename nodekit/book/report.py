"""What a chapter asserts and shows: hard checks, statistical verdicts and tables.

* :func:`check` — a fact of our code or of mathematics (exactness, an order of convergence, a
  closed form): it holds or the chapter stops.
* :func:`compare` — a claim of a paper about two measured quantities, decided by statistics over
  seeds: **supported**, **not resolved** or **contradicted**.
* :func:`table` — a Markdown table (ours beside published).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ClaimFailed", "Verdict", "check", "compare", "table"]

VERDICTS: tuple[str, ...] = ("supported", "not resolved", "contradicted")

TALLY: Counter[str] = Counter()
"""How many checks held / failed and how many verdicts of each kind this process printed."""


class ClaimFailed(AssertionError):
    """A claim the chapter makes no longer holds for the numbers it measured."""


def _claims_mode() -> str:
    mode = os.environ.get("NODEKIT_CLAIMS", "raise")
    if mode not in ("raise", "report"):
        raise ValueError(f"NODEKIT_CLAIMS={mode!r}: use 'raise' (the default) or 'report'")
    return mode


def check(claim: str, holds: bool, measured: str = "") -> None:
    """Print ``claim`` with its verdict and raise :class:`ClaimFailed` if it does not hold.

    The printed verdict line is deterministic, so notebooks mark these cells for nbval;
    ``measured`` (printed on the line after) holds the noisy numbers behind the verdict.
    With ``NODEKIT_CLAIMS=report`` in the environment a failing claim is printed but does not
    stop the chapter: a survey of which claims hold at another seed, scale or machine.
    """
    mode = _claims_mode()
    TALLY["holds" if holds else "FAILS"] += 1
    print(f"[{'holds' if holds else 'FAILS'}] {claim}")
    if not holds and mode == "raise":
        raise ClaimFailed(f"claim does not hold: {claim}" + (f" (measured: {measured})" if measured else ""))


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`compare`: the mean difference ``a − b``, its confidence interval,
    the number of seeds, and the verdict on the claim that ``a − b`` lies on the ``expect`` side of 0."""

    claim: str
    expect: str
    difference: float
    low: float
    high: float
    seeds: int
    method: str
    verdict: str

    def __str__(self) -> str:
        return (f"{self.claim}: a − b = {self.difference:+.4g}, 95 % CI [{self.low:+.4g}, {self.high:+.4g}] "
                f"over {self.seeds} seed{'s' if self.seeds != 1 else ''} ({self.method}) → {self.verdict}")


def _as_runs(values: Sequence[Any] | float, name: str) -> list[np.ndarray]:
    if isinstance(values, (int, float)):
        return [np.asarray([float(values)])]
    runs = [np.atleast_1d(np.asarray(v, dtype=float)) for v in values]
    if not runs:
        raise ValueError(f"compare(): {name} is empty; pass one result per seed")
    if any(not np.all(np.isfinite(r)) for r in runs):
        raise ValueError(f"compare(): {name} holds NaN or infinite values: {values!r}")
    return runs


def compare(
    claim: str,
    a: Sequence[Any],
    b: Sequence[Any] | float,
    expect: str = ">",
    confidence: float = 0.95,
    resamples: int = 2000,
) -> Verdict:
    """Decide the claim "``a`` is greater (``expect=">"``) or smaller (``"<"``) than ``b``".

    ``a`` holds one result per seed: a number (e.g. an accuracy), or the per-example outcomes
    of that seed (e.g. 0/1 correctness on the same test examples for ``a`` and ``b``). ``b`` is
    paired with ``a`` seed by seed, or one number (a published value). The difference ``a − b``
    gets a ``confidence`` interval:

    * numbers from ≥ 2 seeds: Student's t interval of the paired differences;
    * per-example outcomes: a bootstrap over seeds and, within each seed, over the examples
      (resampled jointly for ``a`` and ``b``), with a fixed generator so the result is repeatable.

    **supported** — the interval excludes 0 on the claimed side; **contradicted** — it excludes 0 on
    the other side; **not resolved** — it contains 0. Prints one deterministic line,
    ``[verdict] claim``, for a ``# NBVAL_CHECK_OUTPUT`` cell, and returns the :class:`Verdict`
    with the numbers (show them in a cell whose output is not checked).
    """
    if expect not in (">", "<"):
        raise ValueError(f"expect must be '>' (a greater than b) or '<' (a smaller than b), got {expect!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    runs_a = _as_runs(a, "a")
    runs_b = _as_runs(b, "b")
    if len(runs_b) == 1 and len(runs_a) > 1 and runs_b[0].size == 1:
        runs_b = runs_b * len(runs_a)
    if len(runs_a) != len(runs_b):
        raise ValueError(f"compare(): a has {len(runs_a)} seeds but b has {len(runs_b)}; pair them seed by seed")
    per_example = any(r.size > 1 for r in runs_a)
    if per_example:
        for ra, rb in zip(runs_a, runs_b):
            if rb.size != 1 and rb.size != ra.size:
                raise ValueError(f"compare(): per-example outcomes of a ({ra.size}) and b ({rb.size}) differ in length")
        rng = np.random.default_rng(0)
        n = len(runs_a)
        stats = np.empty(resamples)
        for k in range(resamples):
            seeds = rng.integers(0, n, n)
            diffs = []
            for s in seeds:
                ra, rb = runs_a[s], runs_b[s]
                idx = rng.integers(0, ra.size, ra.size)
                diffs.append(ra[idx].mean() - (rb[idx].mean() if rb.size > 1 else rb[0]))
            stats[k] = np.mean(diffs)
        difference = float(np.mean([ra.mean() - rb.mean() for ra, rb in zip(runs_a, runs_b)]))
        alpha = (1 - confidence) / 2
        low, high = (float(q) for q in np.quantile(stats, [alpha, 1 - alpha]))
        method = "bootstrap over seeds and examples"
    else:
        diffs = np.array([ra[0] - rb[0] for ra, rb in zip(runs_a, runs_b)])
        if len(diffs) < 2:
            raise ValueError("compare(): one number per side cannot give a confidence interval; pass results of "
                             ">= 2 seeds, or the per-example outcomes of the seed")
        from scipy import stats as scipy_stats

        difference = float(diffs.mean())
        half = float(scipy_stats.t.ppf(0.5 + confidence / 2, len(diffs) - 1) * diffs.std(ddof=1) / math.sqrt(len(diffs)))
        low, high = difference - half, difference + half
        method = "paired t"
    above, below = low > 0, high < 0
    if (above and expect == ">") or (below and expect == "<"):
        verdict = "supported"
    elif above or below:
        verdict = "contradicted"
    else:
        verdict = "not resolved"
    result = Verdict(claim, expect, difference, low, high, len(runs_a), method, verdict)
    TALLY[verdict] += 1
    print(f"[{verdict}] {claim}")
    return result


def table(header: Sequence[str], rows: Sequence[Sequence[object]], caption: str = "") -> Any:
    """A Markdown table (rendered in Jupyter and in the book)."""
    from IPython.display import (
        Markdown,  # IPython is a dependency of the book, not of nodekit
    )

    lines = [f"**{caption}**\n" if caption else ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return Markdown("\n".join(lines))
