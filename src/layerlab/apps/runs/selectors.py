"""Reads on runs, scoped to the projects the user may see."""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from layerlab.apps.projects.models import Project
from layerlab.apps.projects.selectors import project_list_visible
from layerlab.apps.runs.models import MetricPoint, Run
from layerlab.core.ids import parse_id


def run_list_visible(*, user) -> QuerySet[Run]:
    """Runs of every project the user may see."""
    return Run.objects.filter(project__in=project_list_visible(user=user)).select_related("project", "parent")


def run_for_metrics(run_id) -> Run | None:
    """The run ``runs/{id}/metrics/`` writes to, with what ingestion and the role check read, or None.

    Only the run's ``id``, ``origin``, ``heartbeat_at`` and its project's ``id``, ``owner_id`` and
    ``name`` are loaded (the rest loads on first use), in one plain query: compiling the ORM's
    ``select_related(...).only(...)`` was a tenth of a 10-point batch. Visibility is not decided
    here: the caller's role check answers 404 for a run the user may not see.
    """
    run_id = parse_id(run_id)
    if run_id is None:
        return None
    quote = connection.ops.quote_name
    run_columns = ", ".join(f"r.{quote(c)}" for c in ("id", "origin", "heartbeat_at", "project_id"))
    sql = (
        f"SELECT {run_columns}, p.{quote('owner_id')} AS {quote('project_owner_id')}, "
        f"p.{quote('name')} AS {quote('project_name')} FROM {quote(Run._meta.db_table)} r "
        f"INNER JOIN {quote(Project._meta.db_table)} p ON p.{quote('id')} = r.{quote('project_id')} "
        f"WHERE r.{quote('id')} = %s"
    )
    run = next(iter(Run.objects.raw(sql, [run_id])), None)
    if run is not None:
        loaded = {"id": run.project_id, "owner_id": run.project_owner_id, "name": run.project_name}
        # from_db takes the values in the model's field order, the missing fields deferred.
        names = [f.attname for f in Project._meta.concrete_fields if f.attname in loaded]
        run.project = Project.from_db(run._state.db, names, [loaded[name] for name in names])
    return run


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
