"""Jobs of the datasets app: they take IDs and call one service."""

from __future__ import annotations

from django_tasks import task

from layerlab.apps.datasets.services import dataset_inspect


@task()
def dataset_inspect_task(dataset_id: int) -> str:
    """Read a dataset with the engine: classes, counts per split, input shape, skipped files."""
    return dataset_inspect(dataset_id=dataset_id)["status"]
