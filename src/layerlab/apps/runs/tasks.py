"""Jobs of the runs app: they take IDs and call one service."""

from __future__ import annotations

from django_tasks import task

from layerlab.apps.runs.execution import run_execute


@task()
def run_train_task(run_id: int) -> str:
    """Train one queued run (the worker's job)."""
    return run_execute(run_id=run_id)
