"""nodekit.book.smoke: NODEKIT_SMOKE caps counted sizes, keeps everything else, says what it capped."""

from __future__ import annotations

import pytest

from nodekit.book.provenance import start_chapter
from nodekit.book.smoke import SMOKE_ENV, cap_for, smoke_enabled, smoke_settings


def test_counted_sizes_are_capped_and_the_rest_is_kept():
    full = dict(subset="full", seeds=3, width=64, epochs=(25, 15, 5), n_attack=10_000, n_train=None, lr=1e-3,
                tol=1e-3, pgd_steps=(10, 1000), restarts=10, square_queries=5000, tis_from_epoch=5,
                adjoint=True, times=(1.0, 5.0, 10.0), spsa=dict(steps=100, samples=128),
                adv_pgd=dict(steps=40, step_size=0.01), linear_iterations=2000, grid=300)
    capped, changes = smoke_settings(full)
    assert capped == dict(subset="full", seeds=2, width=64, epochs=(1, 1, 1), n_attack=24, n_train=None, lr=1e-3,
                          tol=1e-3, pgd_steps=(2, 2), restarts=1, square_queries=20, tis_from_epoch=0,
                          adjoint=True, times=(1.0, 5.0, 10.0), spsa=dict(steps=2, samples=4),
                          adv_pgd=dict(steps=2, step_size=0.01), linear_iterations=3, grid=8)
    assert "spsa.samples: 128 -> 4" in changes and "n_attack: 10000 -> 24" in changes
    assert not any(c.startswith(("width", "lr", "tol", "adjoint", "times", "subset")) for c in changes)
    assert full["spsa"]["samples"] == 128, "the profile's own settings must not change"


def test_small_values_stay_and_names_match_whole_words_only():
    assert smoke_settings(dict(seeds=1, n_attack=10))[1] == []
    assert cap_for("pgd_steps") == 2 and cap_for("step_size") is None and cap_for("n_train") == 24
    assert cap_for("nfe") is None and cap_for("width") is None


def test_the_switch_rejects_values_other_than_0_or_1(monkeypatch):
    monkeypatch.delenv(SMOKE_ENV, raising=False)
    assert not smoke_enabled()
    monkeypatch.setenv(SMOKE_ENV, "1")
    assert smoke_enabled()
    monkeypatch.setenv(SMOKE_ENV, "yes")
    with pytest.raises(ValueError, match="NODEKIT_SMOKE='yes': use 1"):
        smoke_enabled()


def test_start_chapter_caps_the_settings_and_says_so(monkeypatch):
    monkeypatch.setenv(SMOKE_ENV, "1")
    run = start_chapter("test", "full", "cpu", quick=dict(epochs=2), full=dict(epochs=100, width=64))
    assert run.settings == dict(epochs=1, width=64)
    assert "epochs: 100 -> 1" in run.rows["smoke"] and "width" not in run.rows["smoke"]
    monkeypatch.setenv(SMOKE_ENV, "0")
    run = start_chapter("test", "full", "cpu", quick=dict(epochs=2), full=dict(epochs=100, width=64))
    assert run.settings == dict(epochs=100, width=64) and "smoke" not in run.rows
