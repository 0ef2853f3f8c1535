"""nodekit.book.plots: running means and mean ± std."""

from __future__ import annotations

import numpy as np
import pytest

from nodekit.book.plots import mean_std, smooth


def test_smooth_is_a_running_mean():
    np.testing.assert_allclose(smooth([1, 2, 3, 4, 5], 2), [1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(smooth([1.0, 3.0], 1), [1.0, 3.0])


def test_smooth_of_a_series_shorter_than_its_window_is_its_mean():
    # np.convolve would swap the roles of the two arrays and return window - len + 1 values
    np.testing.assert_allclose(smooth([1.0, 2.0, 6.0], 25), [3.0])
    assert smooth([], 25).size == 0


def test_smooth_rejects_a_bad_window():
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
        smooth([1.0], 0)


def test_mean_std():
    assert mean_std([1.0, 3.0]) == f"2.000 ± {np.std([1.0, 3.0], ddof=1):.3f}"
    assert mean_std([0.5], fmt="{:.1f}", scale=100) == "50.0"
