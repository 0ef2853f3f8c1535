"""nodekit.book.provenance: devices and the chapter harness start_chapter()."""

from __future__ import annotations

import subprocess

import pytest
import torch

import nodekit
from nodekit.book import provenance
from nodekit.book.profiles import UnknownProfileError
from nodekit.book.provenance import git_commit, resolve_device, start_chapter


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu-please")


def test_start_chapter_records_provenance():
    run = start_chapter("test", "quick", "cpu", seed=3)
    first = torch.rand(1)
    start_chapter("test", "quick", "cpu", seed=3)
    assert torch.equal(first, torch.rand(1)), "the seed must fix torch's RNG"
    run.record_data("toy data, 10 points")
    seconds = run.finish()
    text = repr(run)
    for field in ("quick", "cpu", torch.__version__, nodekit.__version__, "toy data, 10 points", "git commit"):
        assert field in text
    assert seconds >= 0 and "wall time" in text and "(running)" not in text
    assert "<table" in run._repr_html_()



def test_start_chapter_picks_the_profiles_settings_and_sets_threads():
    before = torch.get_num_threads()
    try:
        run = start_chapter("test", "quick", "cpu", 0, quick=dict(epochs=2), full=dict(epochs=100))
        assert run.settings == {"epochs": 2} and torch.get_num_threads() == 1
        run = start_chapter("test", "full", "cpu", 0, threads=2, quick=dict(epochs=2), full=dict(epochs=100))
        assert run.settings == {"epochs": 100} and torch.get_num_threads() == 2
        assert start_chapter("test", "quick", "cpu", 0).settings == {}
        with pytest.raises(ValueError, match="missing \\['full'\\]"):
            start_chapter("test", "quick", "cpu", 0, quick=dict(epochs=2))
        with pytest.raises(UnknownProfileError, match="unknown profile 'fast'"):
            start_chapter("test", "fast", "cpu", 0, quick={}, full={})
    finally:
        torch.set_num_threads(before)


def test_commit_marks_only_uncommitted_code_changes(monkeypatch):
    """Edits to notebooks (the chapter being executed is one) must not mark the commit; code changes must."""
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        out = "abc1234\n" if "rev-parse" in command else (" M nodekit/fields.py\n" if changed["code"] else "")
        return subprocess.CompletedProcess(command, 0, stdout=out, stderr="")

    changed = {"code": False}
    monkeypatch.setattr(provenance.subprocess, "run", fake_run)
    assert git_commit() == "abc1234"
    status = calls[-1]
    assert "--" in status and {"nodekit", "scripts", "Makefile", "pyproject.toml"} <= set(status[status.index("--") + 1:])
    assert "notebooks" not in status
    changed["code"] = True
    assert git_commit() == "abc1234 +uncommitted code changes"
