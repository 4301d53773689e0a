"""Downsampling a series to a point budget for charts, keeping its peaks (min and max per bucket)."""

from __future__ import annotations


def minmax_downsample(steps: list[int], values: list[float], budget: int) -> tuple[list[int], list[float]]:
    """At most ``budget`` points: the first and last, plus the min and max of each bucket in step order.

    Args:
        steps, values: the series in step order.
        budget: the most points to return (at least 4 for the peaks to survive).
    """
    n = len(steps)
    if budget <= 0 or n <= budget:
        return list(steps), list(values)
    if budget < 4:
        idx = sorted({0, n - 1})[:budget]
        return [steps[i] for i in idx], [values[i] for i in idx]
    buckets = (budget - 2) // 2
    inner = n - 2
    keep = [0]
    for b in range(buckets):
        lo = 1 + (b * inner) // buckets
        hi = 1 + ((b + 1) * inner) // buckets
        if lo >= hi:
            continue
        chunk = range(lo, hi)
        i_min = min(chunk, key=values.__getitem__)
        i_max = max(chunk, key=values.__getitem__)
        keep.extend(sorted({i_min, i_max}))
    keep.append(n - 1)
    return [steps[i] for i in keep], [values[i] for i in keep]
