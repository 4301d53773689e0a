"""Reads on sweeps, scoped to the projects the user may see; the trials table as compact rows."""

from __future__ import annotations

from django.db.models import QuerySet, Sum

from layerlab.apps.projects.selectors import project_list_visible
from layerlab.apps.sweeps.models import Sweep, SweepTrial


def sweep_list_visible(*, user) -> QuerySet[Sweep]:
    """Sweeps of every project the user may see."""
    return Sweep.objects.filter(project__in=project_list_visible(user=user)).select_related("project")


def sweep_counts(*, sweep: Sweep) -> dict[str, int]:
    """Trials by state (``running``, ``complete``, ``pruned``, ``failed``)."""
    counts = dict.fromkeys(SweepTrial.State.values, 0)
    for state in SweepTrial.objects.filter(sweep=sweep).values_list("state", flat=True):
        counts[state] += 1
    return counts


def sweep_epochs(*, sweep: Sweep) -> int:
    """Epochs trained by all of the sweep's trials (what pruning saves)."""
    return SweepTrial.objects.filter(sweep=sweep).aggregate(n=Sum("epochs"))["n"] or 0


def sweep_best(*, sweep: Sweep) -> SweepTrial | None:
    """The complete trial with the best value (by the sweep's goal)."""
    rows = SweepTrial.objects.filter(sweep=sweep, state=SweepTrial.State.COMPLETE, value__isnull=False)
    order = "-value" if sweep.goal == "maximize" else "value"
    return rows.order_by(order, "number").first()


def sweep_trial_rows(*, sweep: Sweep) -> dict:
    """The trials table in columns-once form (one list per trial), cheap for 10,000 trials:
    ``{"columns": [...], "params": [...], "rows": [[number, state, value, epochs, run_id, run_status, p1, ...]]}``."""
    keys = [p for p in (sweep.spec.get("parameters") or {})]
    rows = []
    values = SweepTrial.objects.filter(sweep=sweep).order_by("number")
    for number, state, value, epochs, run_id, run_status, params in values.values_list(
        "number", "state", "value", "epochs", "run_id", "run__status", "params"
    ):
        rows.append([number, state, value, epochs, run_id, run_status, *[params.get(k) for k in keys]])
    return {
        "columns": ["number", "state", "value", "epochs", "run", "run_status", *keys],
        "params": keys,
        "rows": rows,
    }
