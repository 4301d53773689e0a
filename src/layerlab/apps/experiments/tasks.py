"""Jobs of the experiments app: they take IDs and call one service."""

from __future__ import annotations

from django_tasks import task

from layerlab.apps.experiments.probes import experiment_probe_execute


@task()
def experiment_probe_task(trial_id: int) -> str:
    """Run one probe trial of an experiment (a worker's job); its run's status."""
    return experiment_probe_execute(trial_id=trial_id)
