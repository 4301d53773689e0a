"""Writes of metric points sent by clients: batches of up to 10,000 points, upserted by step."""

from __future__ import annotations

import math

from django.db import connection, transaction
from django.utils import timezone

from layerlab.apps.runs.metric_blocks import metric_blocks_refresh
from layerlab.apps.runs.models import MetricBlock, MetricPoint, Run
from layerlab.core.errors import LayerlabError

MAX_POINTS_PER_BATCH = 10_000


class MetricError(LayerlabError):
    """A metric batch is malformed or too large."""

    kind = "metric_error"


def metric_rows_upsert(run_id: int, rows: list[tuple[str, int, float]]) -> None:
    """``INSERT ... ON CONFLICT (run, name, step) DO UPDATE``: one statement, many rows.

    The block summaries of the touched steps are refreshed in the same transaction.
    Plain SQL because building thousands of model instances per batch was most of the cost;
    the syntax is shared by SQLite (3.24+) and PostgreSQL.
    """
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(MetricPoint._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({quote('run_id')}, {quote('name')}, {quote('step')}, {quote('value')}) "
        f"VALUES (%s, %s, %s, %s) ON CONFLICT ({quote('run_id')}, {quote('name')}, {quote('step')}) "
        f"DO UPDATE SET {quote('value')} = excluded.{quote('value')}"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, [(run_id, name, step, value) for name, step, value in rows])
    touched: dict[str, set[int]] = {}
    for name, step, _ in rows:
        touched.setdefault(name, set()).add(step // MetricBlock.BLOCK)
    metric_blocks_refresh(run_id, touched)


# A client run's heartbeat is refreshed at most this often (seconds) by its metric batches.
HEARTBEAT_EVERY = 5.0


@transaction.atomic
def metrics_ingest(*, run: Run, rows: list[tuple[str, int, float]]) -> int:
    """Store ``(name, step, value)`` rows; a point re-sent for the same step replaces the old value.

    Args:
        run: the run the points belong to.
        rows: at most MAX_POINTS_PER_BATCH finite points, stored all-or-nothing.
    """
    if len(rows) > MAX_POINTS_PER_BATCH:
        raise MetricError(
            f"{len(rows)} points in one batch, the limit is {MAX_POINTS_PER_BATCH}",
            hint="split the batch (layerlab.client does this itself)",
            where="points",
        )
    unique: dict[tuple[str, int], float] = {}
    for name, step, value in rows:
        if not math.isfinite(value):
            raise MetricError(f"value {value} is not a finite number", where=f"{name}@{step}")
        # The last of several points with the same (name, step) wins, as it would one batch later.
        unique[(name, step)] = value
    metric_rows_upsert(run.id, [(name, step, value) for (name, step), value in unique.items()])
    now = timezone.now()
    if run.origin == Run.Origin.CLIENT and (
        run.heartbeat_at is None or (now - run.heartbeat_at).total_seconds() > HEARTBEAT_EVERY
    ):
        Run.objects.filter(id=run.id).update(heartbeat_at=now)
    return len(unique)
