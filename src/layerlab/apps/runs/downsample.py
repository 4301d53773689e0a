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
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    buckets = (budget - 2) // 2
    inner = n - 2
    edges = 1 + (np.arange(buckets + 1) * inner) // buckets
    keep = [0]
    for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        if lo >= hi:
            continue
        chunk = array[lo:hi]
        i_min, i_max = lo + int(chunk.argmin()), lo + int(chunk.argmax())
        keep.extend((i_min, i_max) if i_min <= i_max else (i_max, i_min))
        if i_min == i_max:
            keep.pop()
    keep.append(n - 1)
    return [steps[i] for i in keep], [values[i] for i in keep]
