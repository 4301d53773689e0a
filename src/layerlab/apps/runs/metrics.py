"""Writes of metric points sent by clients: batches of up to 10,000 points, upserted by step."""

from __future__ import annotations

import math

from django.db import transaction
from django.utils import timezone

from layerlab.apps.runs.models import MetricPoint, Run
from layerlab.core.errors import LayerlabError

MAX_POINTS_PER_BATCH = 10_000


class MetricError(LayerlabError):
    """A metric batch is malformed or too large."""

    kind = "metric_error"


@transaction.atomic
def metrics_ingest(*, run: Run, points: list[dict]) -> int:
    """Store ``[{"name", "step", "value"}, ...]``; a point re-sent for the same step replaces the old value.

    Args:
        run: the run the points belong to.
        points: at most MAX_POINTS_PER_BATCH points, all-or-nothing.
    """
    if len(points) > MAX_POINTS_PER_BATCH:
        raise MetricError(
            f"{len(points)} points in one batch, the limit is {MAX_POINTS_PER_BATCH}",
            hint="split the batch (layerlab.client does this itself)",
            where="points",
        )
    rows: dict[tuple[str, int], MetricPoint] = {}
    for index, point in enumerate(points):
        value = point["value"]
        if not math.isfinite(value):
            raise MetricError(f"value {value} is not a finite number", where=f"points[{index}].value")
        # The last of several points with the same (name, step) wins, as it would one batch later.
        rows[(point["name"], point["step"])] = MetricPoint(
            run_id=run.id, name=point["name"], step=point["step"], value=value
        )
    MetricPoint.objects.bulk_create(
        list(rows.values()),
        update_conflicts=True,
        unique_fields=["run", "name", "step"],
        update_fields=["value"],
        batch_size=2000,
    )
    if run.origin == Run.Origin.CLIENT:
        Run.objects.filter(id=run.id).update(heartbeat_at=timezone.now())
    return len(rows)
