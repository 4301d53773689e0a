"""A stage's output: a JSON marker in the lab's storage, ``pipelines/<identity>.json``.

The marker holds what the stage produced (its run, dataset, metrics, files). It counts as there
only while what it names still is: a deleted marker, a deleted run or one that did not succeed
makes the stage run again.
"""

from __future__ import annotations

import json

import luigi
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

MARKER_DIR = "pipelines"


def marker_name(identity: str) -> str:
    return f"{MARKER_DIR}/{identity}.json"


class StageTarget(luigi.Target):
    """The marker of one stage identity in the Django default storage."""

    def __init__(self, identity: str):
        self.identity = identity
        self.name = marker_name(identity)

    def read(self) -> dict | None:
        if not default_storage.exists(self.name):
            return None
        try:
            with default_storage.open(self.name, "rb") as handle:
                return json.loads(handle.read().decode())
        except (OSError, ValueError):
            return None  # unreadable: made again

    def exists(self) -> bool:
        marker = self.read()
        return marker is not None and products_exist(marker.get("result") or {})

    def write(self, marker: dict) -> None:
        if default_storage.exists(self.name):
            default_storage.delete(self.name)
        default_storage.save(self.name, ContentFile(json.dumps(marker, indent=2, default=str).encode()))

    def remove(self) -> None:
        if default_storage.exists(self.name):
            default_storage.delete(self.name)


def products_exist(result: dict) -> bool:
    """Whether the run and dataset a stage's result names are still in the lab (the run succeeded)."""
    from layerlab.apps.datasets.models import Dataset
    from layerlab.apps.runs.models import Run

    if result.get("run") and not Run.objects.filter(id=result["run"], status=Run.Status.SUCCEEDED).exists():
        return False
    if result.get("dataset") and not Dataset.objects.filter(id=result["dataset"]).exists():
        return False
    if result.get("sweep"):
        from layerlab.apps.sweeps.models import Sweep

        if not Sweep.objects.filter(id=result["sweep"]).exists():
            return False
    return not result.get("report") or default_storage.exists(result["report"])
