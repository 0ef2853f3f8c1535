"""The ``full`` profile cannot rot: every chapter executes with ``profile="full"`` to its end.

The full profile is meant for a GPU and the full data sets, which CI has neither of. Here each
chapter runs through ``scripts/book.py execute`` (as ``make book PROFILE=full`` does) on tiny data in
the full data's own format (IDX files of 100 / 50 real digits written into a temporary
``NODEKIT_DATA``), with ``NODEKIT_SMOKE=1`` capping epochs, examples and attack steps
(:mod:`nodekit.book.smoke`), ``NODEKIT_CLAIMS=report`` (smoke numbers mean nothing), and a
temporary model cache. What this catches: code paths of the full settings (widths, the adjoint, the
large end-time net, more seeds, the full-data loader) that the quick profile never takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nodekit.data import mnist
from nodekit.data.images import write_idx

ROOT = Path(__file__).resolve().parents[2]
SLOW: dict[str, str] = {
    "07_end_time.ipynb": "its full profile integrates the 650k-parameter large net (a 64 x 28 x 28 state) to "
                         "t = 500 and 1000 with dopri5 at 1e-3: over ten CPU-minutes even at smoke sizes",
}
"""Chapters whose smoke run does not fit CI's budget: they run with ``NODEKIT_SMOKE_SLOW=1``."""
CHAPTERS = [
    pytest.param(name, marks=pytest.mark.skipif(
        os.environ.get("NODEKIT_SMOKE_SLOW") != "1" and name in SLOW,
        reason=f"{SLOW.get(name)}; run it with NODEKIT_SMOKE_SLOW=1 pytest tests/book/test_full_profile.py"))
    for name in sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
]


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment of a smoke run: tiny full-format MNIST, smoke caps, claims reported, fresh cache."""
    root = tmp_path_factory.mktemp("smoke")
    digits = mnist("5k", seed=0)
    folder = root / "data" / "mnist"
    folder.mkdir(parents=True)
    for split, stems, count in (("train", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), 100),
                                ("test", ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), 50)):
        x, y = getattr(digits, split)[:count]
        write_idx(folder / stems[0], np.round(x.squeeze(1).numpy() * 255).astype(np.uint8))
        write_idx(folder / stems[1], y.numpy().astype(np.uint8))
    return {**os.environ, "NODEKIT_DATA": str(root / "data"), "NODEKIT_CACHE": str(root / "cache"),
            "NODEKIT_SMOKE": "1", "NODEKIT_CLAIMS": "report", "OUT": str(root / "executed")}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_to_the_end_in_the_full_profile(chapter: str, smoke_env: dict[str, str]) -> None:
    out = Path(smoke_env["OUT"]) / Path(chapter).stem
    command = [sys.executable, str(ROOT / "scripts" / "book.py"), "execute", "--profile", "full", "--device", "cpu",
               "--only", chapter, "--out", str(out)]
    done = subprocess.run(command, env=smoke_env, capture_output=True, text=True, timeout=600)
    report = ROOT / "_build" / "full" / "reports" / f"{Path(chapter).stem}.log"
    details = report.read_text() if report.exists() else done.stdout + done.stderr
    assert done.returncode == 0, f"{chapter} failed in the full profile (smoke):\n{details[-6000:]}"
    provenance = next(o["metadata"]["nodekit_provenance"]
                      for cell in json.loads((out / "notebooks" / chapter).read_text())["cells"]
                      for o in cell.get("outputs", []) if "nodekit_provenance" in o.get("metadata", {}))
    assert provenance["profile"] == "full" and provenance["smoke"].startswith("NODEKIT_SMOKE=1")
    assert provenance["wall time"] != "(running)", f"{chapter} did not reach run.finish()"
