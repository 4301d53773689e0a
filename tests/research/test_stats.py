"""research/stats.py: the Student-t interval, the bootstrap interval and Welch's test."""

from __future__ import annotations

import math

import pytest

from layerlab.core.errors import ConfigError
from layerlab.research.stats import bootstrap_ci, fmt_ci, mean_ci, welch


def test_mean_ci_matches_the_student_t_formula():
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0])
    # sd = 1.29099, sem = 0.645497, t(0.975, 3) = 3.182446
    assert mean == pytest.approx(2.5)
    assert hi - mean == pytest.approx(3.182446 * 0.645497, rel=1e-5)
    assert mean - lo == pytest.approx(hi - mean)


def test_mean_ci_narrows_with_a_lower_level_and_has_no_interval_for_one_value():
    _, lo95, hi95 = mean_ci([0.8, 0.9, 0.85], level=0.95)
    _, lo50, hi50 = mean_ci([0.8, 0.9, 0.85], level=0.5)
    assert hi50 - lo50 < hi95 - lo95
    assert mean_ci([0.7]) == (0.7, None, None)
    assert mean_ci([]) == (None, None, None)
    assert mean_ci([0.5, 0.5]) == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, math.nan])
def test_a_bad_level_is_refused(bad):
    with pytest.raises(ConfigError, match="level"):
        mean_ci([1.0, 2.0], level=bad)


def test_nan_values_are_refused():
    with pytest.raises(ConfigError, match="finite"):
        mean_ci([1.0, math.nan])


def test_bootstrap_ci_covers_the_mean_and_is_reproducible():
    values = [0.1, 0.4, 0.35, 0.8, 0.5, 0.45]
    lo, hi = bootstrap_ci(values, level=0.9, n=500, seed=3)
    assert lo < sum(values) / len(values) < hi
    assert (lo, hi) == bootstrap_ci(values, level=0.9, n=500, seed=3)
    assert bootstrap_ci([1.0]) == (None, None)


def test_bootstrap_ci_leaves_out_undefined_statistics():
    items = [None, 1.0, 2.0, 3.0]
    lo, hi = bootstrap_ci(items, fn=lambda v: None if None in v else max(v), n=300, seed=0)
    assert 1.0 <= lo <= hi <= 3.0


def test_welch_separates_different_means_and_not_equal_ones():
    a = [0.90, 0.91, 0.92, 0.905, 0.915]
    b = [0.70, 0.72, 0.69, 0.71, 0.705]
    assert welch(a, b) < 1e-6
    assert welch(a, list(a)) == pytest.approx(1.0)
    assert welch([1.0], [2.0, 3.0]) is None
    assert welch([1.0, 1.0], [2.0, 2.0]) == 0.0


def test_fmt_ci():
    assert fmt_ci(0.5, 0.4, 0.6) == "0.500 [0.400, 0.600]"
    assert fmt_ci(0.5, None, None) == "0.500"
    assert fmt_ci(None, None, None) == "-"
