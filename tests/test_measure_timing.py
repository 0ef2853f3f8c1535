"""nodekit.measure.timing: timings of CNF training steps."""

from __future__ import annotations

from nodekit.measure.timing import time_training_step


def test_time_training_step_exact_grows_with_dimension():
    assert time_training_step(64, "exact", repeats=1) > time_training_step(64, "hutchinson", repeats=1)

