"""Reads on runs, scoped to the projects the user may see."""

from __future__ import annotations

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
    rows = MetricPoint.objects.filter(run=run, name=name).order_by("step").values_list("step", "value")
    steps, values = [], []
    for step, value in rows:
        steps.append(step)
        values.append(value)
    return steps, values
