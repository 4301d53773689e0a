"""Statistics for repeated trials: a mean with its Student-t interval, a bootstrap interval, Welch's test.

Every kind reports repeated trials (seeds, draws) through these, so a table shows a mean and an
interval rather than one lucky number. With one value there is no interval: ``lo`` and ``hi`` are None.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from layerlab.core.errors import ConfigError


def _finite(values: Sequence[float], what: str = "values") -> np.ndarray:
    array = np.asarray([float(v) for v in values if v is not None], dtype=float)
    if not np.all(np.isfinite(array)):
        raise ConfigError(f"{what} must be finite numbers", hint="drop the NaN or infinite values")
    return array


def _check_level(level: float) -> None:
    if not 0.0 < float(level) < 1.0:
        raise ConfigError(f"confidence level must be in (0, 1), got {level}", hint="e.g. 0.95")


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float | None, float | None, float | None]:
    """``(mean, lo, hi)``: the mean and its Student-t confidence interval (None, None, None when empty;
    lo = hi = None for one value)."""
    _check_level(level)
    array = _finite(values)
    if array.size == 0:
        return None, None, None
    mean = float(array.mean())
    if array.size == 1:
        return mean, None, None
    from scipy import stats

    sem = float(array.std(ddof=1)) / math.sqrt(array.size)
    if sem == 0.0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2.0, df=array.size - 1)) * sem
    return mean, mean - half, mean + half


def bootstrap_ci(
    values: Sequence,
    fn: Callable[[Sequence], float | None] = lambda v: float(np.mean(v)),
    level: float = 0.95,
    n: int = 2000,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """``(lo, hi)``: the percentile bootstrap interval of ``fn`` over resamples of ``values``.

    ``values`` may be any items (e.g. one result per seed); ``fn`` receives a resampled list and
    returns a number, or None when the statistic is undefined for that resample (those are left out).
    """
    _check_level(level)
    if not 1 <= int(n) <= 1_000_000:
        raise ConfigError(f"bootstrap resamples must be in [1, 1000000], got {n}")
    items = list(values)
    if len(items) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(int(n)):
        picks = rng.integers(0, len(items), size=len(items))
        value = fn([items[i] for i in picks])
        if value is not None and math.isfinite(float(value)):
            stats.append(float(value))
    if not stats:
        return None, None
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1.0 - alpha))


def welch(a: Sequence[float], b: Sequence[float]) -> float | None:
    """The two-sided p-value of Welch's t-test (unequal variances); None with fewer than 2 values a side.

    Two samples without any spread give 1.0 when their means are equal, else 0.0.
    """
    x, y = _finite(a, "first sample"), _finite(b, "second sample")
    if x.size < 2 or y.size < 2:
        return None
    if x.std(ddof=1) == 0.0 and y.std(ddof=1) == 0.0:
        return 1.0 if float(x.mean()) == float(y.mean()) else 0.0
    from scipy import stats

    p = float(stats.ttest_ind(x, y, equal_var=False).pvalue)
    return p if math.isfinite(p) else None


def fmt_ci(mean: float | None, lo: float | None, hi: float | None, digits: int = 3) -> str:
    """``0.912 [0.901, 0.923]`` (or ``0.912`` without an interval, ``-`` without a value)."""
    if mean is None:
        return "-"
    if lo is None or hi is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
