"""Block summaries of metric series (count, min and max with their steps), for fast chart reads."""

from __future__ import annotations

from django.db import connection

from layerlab.apps.runs.models import MetricBlock, MetricPoint

BLOCK = MetricBlock.BLOCK


def block_ranges(blocks: set[int]) -> list[tuple[int, int]]:
    """Sorted block numbers as contiguous ``(first, last)`` ranges (one range query each)."""
    ranges: list[tuple[int, int]] = []
    for block in sorted(blocks):
        if ranges and block == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], block)
        else:
            ranges.append((block, block))
    return ranges


def metric_blocks_refresh(run_id: int, touched: dict[str, set[int]]) -> None:
    """Recompute the summaries of the blocks a write touched, from the stored points.

    Reading back the points (not trusting the batch) keeps replaced values right.
    """
    quote = connection.ops.quote_name
    points = quote(MetricPoint._meta.db_table)
    select = (
        f"SELECT {quote('step')}, {quote('value')} FROM {points} WHERE {quote('run_id')} = %s "
        f"AND {quote('name')} = %s AND {quote('step')} BETWEEN %s AND %s ORDER BY {quote('step')}"
    )
    rows = []
    with connection.cursor() as cursor:
        for name, blocks in touched.items():
            for first, last in block_ranges(blocks):
                cursor.execute(select, [run_id, name, first * BLOCK, last * BLOCK + BLOCK - 1])
                summary: dict[int, list] = {}
                for step, value in cursor.fetchall():
                    entry = summary.get(step // BLOCK)
                    if entry is None:
                        summary[step // BLOCK] = [1, step, value, step, value]
                        continue
                    entry[0] += 1
                    if value < entry[2]:
                        entry[1], entry[2] = step, value
                    if value > entry[4]:
                        entry[3], entry[4] = step, value
                rows += [(run_id, name, block, *entry) for block, entry in summary.items()]
        if not rows:
            return
        columns = ["run_id", "name", "block", "count", "min_step", "min_value", "max_step", "max_value"]
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns[3:])
        cursor.executemany(
            f"INSERT INTO {quote(MetricBlock._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))}) "
            f"ON CONFLICT ({quote('run_id')}, {quote('name')}, {quote('block')}) DO UPDATE SET {updates}",
            rows,
        )


def metric_chart_from_blocks(
    run_id: int, name: str, budget: int
) -> tuple[list[int], list[float], int] | None:
    """At most ``budget`` points of a long series, from block summaries: first, last, and the exact
    min and max of each group of blocks. None when the series is short enough to downsample directly."""
    blocks = list(
        MetricBlock.objects.filter(run_id=run_id, name=name)
        .order_by("block")
        .values_list("count", "min_step", "min_value", "max_step", "max_value")
    )
    total = sum(b[0] for b in blocks)
    buckets = (budget - 2) // 2
    if budget < 4 or total <= budget or len(blocks) <= 2 * buckets:
        return None
    per_bucket = -(-len(blocks) // buckets)  # ceil: never more buckets than the budget allows
    chosen: dict[int, float] = {}
    for start in range(0, len(blocks), per_bucket):
        group = blocks[start : start + per_bucket]
        low = min(group, key=lambda b: b[2])
        high = max(group, key=lambda b: b[4])
        chosen[low[1]] = low[2]
        chosen[high[3]] = high[4]
    ends = MetricPoint.objects.filter(run_id=run_id, name=name)
    for point in (ends.order_by("step").first(), ends.order_by("-step").first()):
        chosen[point.step] = point.value
    steps = sorted(chosen)
    return steps, [chosen[s] for s in steps], total
