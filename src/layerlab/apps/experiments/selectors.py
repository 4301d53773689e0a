"""Reads on experiments, scoped to the projects the user may see; the trials table; the report's images."""

from __future__ import annotations

from django.db.models import QuerySet

from layerlab.apps.experiments.models import Experiment, ExperimentTrial
from layerlab.apps.projects.selectors import project_list_visible


def experiment_list_visible(*, user) -> QuerySet[Experiment]:
    """Experiments of every project the user may see."""
    return Experiment.objects.filter(project__in=project_list_visible(user=user)).select_related("project")


def experiment_counts(*, experiment: Experiment) -> dict[str, int]:
    """Trials by status (running, completed, failed, skipped, cancelled)."""
    counts = dict.fromkeys(ExperimentTrial.Status.values, 0)
    for status in ExperimentTrial.objects.filter(experiment=experiment).values_list("status", flat=True):
        counts[status] += 1
    return counts


def experiment_trials(*, experiment: Experiment) -> list[dict]:
    """Every trial as a row: key, labels, status, probe, run id and status, seconds, error."""
    rows = ExperimentTrial.objects.filter(experiment=experiment).order_by("id")
    return [
        {
            "key": key,
            "labels": labels,
            "status": status,
            "probe": probe or None,
            "run": run_id,
            "run_status": run_status,
            "seconds": seconds,
            "error": error,
        }
        for key, labels, status, probe, run_id, run_status, seconds, error in rows.values_list(
            "key", "labels", "status", "probe", "run_id", "run__status", "seconds", "error"
        )
    ]


def experiment_plot_names(*, experiment: Experiment) -> list[str]:
    """The names of the report's plots (each served as a PNG)."""
    return [p.get("name") for p in (experiment.report or {}).get("plots", []) if p.get("name")]


def experiment_trial_of_run(*, run) -> ExperimentTrial | None:
    """The experiment trial a run is (the run page links its experiment), or None."""
    return ExperimentTrial.objects.filter(run_id=run.id).select_related("experiment").first()
