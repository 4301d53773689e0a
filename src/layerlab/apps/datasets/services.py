"""Writes on datasets: register a built-in source or a server-side path, inspect (uploads in uploads.py)."""

from __future__ import annotations

import json
from pathlib import Path

from django.db import transaction

from layerlab.apps.datasets.models import Dataset
from layerlab.apps.projects.models import Project
from layerlab.core.configtree import from_mapping
from layerlab.core.errors import DataError, LayerlabError
from layerlab.data.config import DataConfig

BUILTIN_SOURCES = ("spiral", "digits", "not-so-clevr")


class DatasetError(LayerlabError):
    """A dataset rule is broken (duplicate name)."""

    kind = "dataset_error"


def path_allowed(path: str, user) -> None:
    """Refuse server paths outside ``LAYERLAB_IMPORT_ROOTS`` (when set) for everyone but superusers."""
    from django.conf import settings

    roots = list(settings.LAYERLAB_IMPORT_ROOTS)
    if not roots or (user is not None and user.is_superuser):
        return
    # Uploads: their local copies, and the stored files themselves on a file-system storage.
    roots.append(str(Path(settings.LAYERLAB_CACHE_DIR) / "uploads"))
    # Uploads kept under LAYERLAB_HOME/files before the storage was rooted at LAYERLAB_HOME.
    roots.append(str(Path(settings.LAYERLAB_HOME) / "files" / "datasets"))
    location = (settings.STORAGES["default"].get("OPTIONS") or {}).get("location")
    if location:
        roots.append(str(Path(location) / "datasets"))
    resolved = Path(path).expanduser().resolve()
    if not any(resolved.is_relative_to(Path(root).expanduser().resolve()) for root in roots):
        raise DataError(
            f"path '{path}' is outside the folders this server reads",
            hint="upload the data, or ask an admin to add its folder to LAYERLAB_IMPORT_ROOTS",
            where="data.path",
        )


def data_section_check(data: dict) -> dict:
    """Check a ``data`` section with the engine's config classes; returns it unchanged."""
    from_mapping(DataConfig, data, "data")
    return data


@transaction.atomic
def dataset_register(*, project: Project, user, name: str, data: dict) -> Dataset:
    """Save a data section: a built-in source, or a path that must exist on the server.

    Args:
        project: where the dataset lives.
        user: who registers it.
        name: unique inside the project.
        data: the experiment config's ``data`` section (``source``, ``path``, ``size`` ...).
    """
    data_section_check(data)
    source = data.get("source", "spiral")
    kind = Dataset.Kind.BUILTIN if source in BUILTIN_SOURCES else Dataset.Kind.PATH
    if kind == Dataset.Kind.PATH:
        path_allowed(data["path"], user)
    if kind == Dataset.Kind.PATH and not Path(data["path"]).exists():
        raise DataError(
            f"path '{data['path']}' does not exist on the server",
            hint="give a server-side path",
            where="data.path",
        )
    if Dataset.objects.filter(project=project, name=name).exists():
        raise DatasetError(f"project '{project.name}' already has a dataset named '{name}'", where="name")
    dataset = Dataset.objects.create(
        project=project, name=name, kind=kind, data=data, created_by=user, info={"status": "pending"}
    )
    dataset_inspect_on_commit(dataset.id)
    return dataset


def dataset_inspect_on_commit(dataset_id: int) -> None:
    """Queue the job that reads the dataset (classes, counts, shapes) once the transaction commits."""
    from layerlab.apps.datasets.tasks import dataset_inspect_task

    transaction.on_commit(lambda: dataset_inspect_task.enqueue(dataset_id))


def dataset_inspect(*, dataset_id: int) -> dict:
    """Prepare the data with the engine and store what it reports in ``info`` (errors in words)."""
    import dataclasses

    from django.conf import settings

    from layerlab.data.prepare import prepare_data

    dataset = Dataset.objects.get(id=dataset_id)
    try:
        data = dict(dataset.data)
        if dataset.kind == Dataset.Kind.UPLOAD:  # read on a machine that may not have its local copy yet
            from layerlab.apps.datasets.uploads import upload_restore

            data["path"] = upload_restore(data.get("path", ""))
        cfg = from_mapping(DataConfig, data, "data")
        report = prepare_data(cfg, seed=0, cache_dir=settings.LAYERLAB_CACHE_DIR).report
        info = {"status": "ready", **dataclasses.asdict(report)}
        info = json.loads(json.dumps(info, default=str))
    except LayerlabError as exc:
        info = {"status": "error", "error": exc.one_line()}
    Dataset.objects.filter(id=dataset_id).update(info=info)
    return info


@transaction.atomic
def dataset_update(*, dataset: Dataset, name: str | None = None) -> Dataset:
    if name is not None and name != dataset.name:
        if Dataset.objects.filter(project=dataset.project, name=name).exclude(id=dataset.id).exists():
            raise DatasetError(
                f"project '{dataset.project.name}' already has a dataset named '{name}'", where="name"
            )
        dataset.name = name
        dataset.save()
    return dataset


@transaction.atomic
def dataset_delete(*, dataset: Dataset) -> None:
    dataset.delete()
