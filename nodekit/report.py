"""Claims asserted in code and tables of ours-vs-published, as chapters show them."""

from __future__ import annotations

import os
from collections.abc import Sequence

from IPython.display import Markdown


class ClaimFailed(AssertionError):
    """A claim the chapter makes no longer holds for the numbers it measured."""


def check(claim: str, holds: bool, measured: str = "") -> None:
    """Print ``claim`` with its verdict and raise :class:`ClaimFailed` if it does not hold.

    The printed verdict line is deterministic, so notebooks mark these cells for nbval;
    ``measured`` (printed on the line after) holds the noisy numbers behind the verdict.
    With ``NODEKIT_CLAIMS=report`` in the environment a failing claim is printed but does not
    stop the chapter: a survey of which claims hold at another seed, scale or machine.
    """
    mode = os.environ.get("NODEKIT_CLAIMS", "raise")
    if mode not in ("raise", "report"):
        raise ValueError(f"NODEKIT_CLAIMS={mode!r}: use 'raise' (the default) or 'report'")
    print(f"[{'holds' if holds else 'FAILS'}] {claim}")
    if not holds and mode == "raise":
        raise ClaimFailed(f"claim does not hold: {claim}" + (f" (measured: {measured})" if measured else ""))


def table(header: Sequence[str], rows: Sequence[Sequence[object]], caption: str = "") -> Markdown:
    """A Markdown table (rendered in Jupyter and in the book)."""
    lines = [f"**{caption}**\n" if caption else ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return Markdown("\n".join(lines))
