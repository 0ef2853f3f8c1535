"""nodekit.book.provenance: devices and the chapter harness start_chapter()."""

from __future__ import annotations

import pytest
import torch

import nodekit
from nodekit.book.provenance import resolve_device, start_chapter


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

