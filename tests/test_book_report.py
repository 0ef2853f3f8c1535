"""nodekit.book.report: hard checks, statistical verdicts and tables."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nodekit.book import report


def test_check_prints_verdict_and_raises_when_false(capsys):
    report.check("one is one", True)
    assert capsys.readouterr().out.strip() == "[holds] one is one"
    with pytest.raises(report.ClaimFailed, match="two is one.*measured: 2"):
        report.check("two is one", False, measured="2")


def test_check_report_mode_prints_failures_without_raising(monkeypatch, capsys):
    monkeypatch.setenv("NODEKIT_CLAIMS", "report")
    report.check("two is one", False)
    assert capsys.readouterr().out.strip() == "[FAILS] two is one"
    monkeypatch.setenv("NODEKIT_CLAIMS", "warn")
    with pytest.raises(ValueError, match="NODEKIT_CLAIMS='warn'.*'report'"):
        report.check("one is one", True)


def test_table_renders_markdown():
    md = report.table(["a", "b"], [(1, 2)], caption="c").data
    assert "| a | b |" in md and "| 1 | 2 |" in md and "**c**" in md



@pytest.mark.parametrize("a, b, expect, verdict", [
    ([0.91, 0.93, 0.92, 0.90], [0.81, 0.82, 0.80, 0.83], ">", "supported"),
    ([0.91, 0.93, 0.92, 0.90], [0.81, 0.82, 0.80, 0.83], "<", "contradicted"),
    ([0.81, 0.82, 0.80, 0.83], [0.91, 0.93, 0.92, 0.90], "<", "supported"),
    ([0.90, 0.70, 0.95, 0.75], [0.80, 0.85, 0.80, 0.82], ">", "not resolved"),
])
def test_compare_decides_by_the_confidence_interval(a, b, expect, verdict, capsys):
    result = report.compare("claim", a, b, expect=expect)
    assert capsys.readouterr().out == f"[{verdict}] claim\n"
    assert result.verdict == verdict and result.seeds == 4 and result.method == "paired t"
    diffs = np.subtract(a, b)
    assert result.difference == pytest.approx(diffs.mean())
    half = stats.t.ppf(0.975, 3) * diffs.std(ddof=1) / 2
    assert (result.low, result.high) == pytest.approx((diffs.mean() - half, diffs.mean() + half))


def test_compare_pairs_seeds_and_accepts_a_published_number():
    # A constant offset is certain however noisy the seeds are: the differences are paired.
    a = [0.5, 0.9, 0.1, 0.7]
    assert report.compare("paired", a, [x - 0.01 for x in a]).verdict == "supported"
    assert report.compare("above a published 0.2", [0.5, 0.52, 0.51], 0.2).verdict == "supported"
    assert report.compare("above a published 0.6", [0.5, 0.52, 0.51], 0.6).verdict == "contradicted"


def test_compare_bootstraps_per_example_outcomes_reproducibly():
    g = np.random.default_rng(0)
    better = [g.random(400) < 0.9 for _ in range(3)]
    worse = [g.random(400) < 0.6 for _ in range(3)]
    first = report.compare("per example", better, worse)
    assert first.verdict == "supported" and first.method.startswith("bootstrap")
    assert report.compare("per example", better, worse) == first, "the bootstrap has a fixed generator"
    same = [g.random(400) < 0.8 for _ in range(3)]
    assert report.compare("no difference", same, same).verdict == "not resolved"
    assert "95 % CI" in str(first) and "3 seeds" in str(first)


def test_compare_errors_name_the_fix():
    with pytest.raises(ValueError, match="one number per side cannot give a confidence interval"):
        report.compare("c", [0.9], [0.8])
    with pytest.raises(ValueError, match="a has 3 seeds but b has 2"):
        report.compare("c", [0.9, 0.8, 0.7], [0.8, 0.7])
    with pytest.raises(ValueError, match="expect must be '>'"):
        report.compare("c", [0.9, 0.8], [0.8, 0.7], expect="greater")
    with pytest.raises(ValueError, match="NaN or infinite"):
        report.compare("c", [0.9, float("nan")], [0.8, 0.7])
