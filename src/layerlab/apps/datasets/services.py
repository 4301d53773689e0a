"""Writes on datasets: register a built-in source or a server-side path (uploads in uploads.py)."""

from __future__ import annotations

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
    if kind == Dataset.Kind.PATH and not Path(data["path"]).exists():
        raise DataError(
            f"path '{data['path']}' does not exist on the server",
            hint="give a server-side path",
            where="data.path",
        )
    if Dataset.objects.filter(project=project, name=name).exists():
        raise DatasetError(f"project '{project.name}' already has a dataset named '{name}'", where="name")
    return Dataset.objects.create(project=project, name=name, kind=kind, data=data, created_by=user)


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
