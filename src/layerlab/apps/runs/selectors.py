"""Reads on runs, scoped to the projects the user may see."""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from layerlab.apps.projects.selectors import project_list_visible
from layerlab.apps.runs.models import MetricPoint, Run


def run_list_visible(*, user) -> QuerySet[Run]:
    """Runs of every project the user may see."""
    return Run.objects.filter(project__in=project_list_visible(user=user)).select_related("project", "parent")


def run_metric_names(*, run: Run) -> list[str]:
    """The names of the run's metric series."""
    return list(
        MetricPoint.objects.filter(run=run).values_list("name", flat=True).distinct().order_by("name")
    )


def run_metric_series(*, run: Run, name: str) -> tuple[list[int], list[float]]:
    """One series at full resolution: steps and values in step order."""
    # A plain cursor: for 100,000-point series the ORM's row handling was most of the read time.
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {quote('step')}, {quote('value')} FROM {quote(MetricPoint._meta.db_table)} "
        f"WHERE {quote('run_id')} = %s AND {quote('name')} = %s ORDER BY {quote('step')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [run.id, name])
        rows = cursor.fetchall()
    return [row[0] for row in rows], [row[1] for row in rows]
