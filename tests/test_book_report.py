"""nodekit.book.report: hard checks, statistical verdicts and tables."""

from __future__ import annotations

import pytest

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

