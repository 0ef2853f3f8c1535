"""nodekit.book.profiles: known profiles and per-profile settings."""

from __future__ import annotations

import pytest

from nodekit.book.profiles import PROFILES, UnknownProfileError, check_profile, select


def test_unknown_profile_lists_known_ones():
    with pytest.raises(UnknownProfileError) as err:
        check_profile("nonsense")
    for name in PROFILES:
        assert name in str(err.value)


def test_select_needs_one_setting_per_profile():
    assert select("full", quick=1, full=2) == 2
    with pytest.raises(ValueError, match="missing"):
        select("quick", quick=1)
    with pytest.raises(UnknownProfileError):
        select("fast", quick=1, full=2)

