"""Writes on datasets: register a built-in source or a server-side path, inspect (uploads in uploads.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from django.db import transaction

from layerlab.apps.datasets.access import data_path_check, dataset_check_readable, message_redact
from layerlab.apps.datasets.models import Dataset
from layerlab.apps.projects.models import Project
from layerlab.core.configtree import from_mapping
from layerlab.core.errors import DataError, LayerlabError
from layerlab.data.config import DataConfig

BUILTIN_SOURCES = ("spiral", "digits", "mnist", "not-so-clevr")

log = logging.getLogger("layerlab.datasets")


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
    # Granted folders only, checked first: a refusal tells nothing of the server's files.
    if kind == Dataset.Kind.PATH:
        data_path_check(path=data["path"], user=user, project=project)
        if not Path(data["path"]).expanduser().exists():
            raise DataError(
                "the path does not exist on the server", hint="give a server-side path", where="data.path"
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

    dataset = Dataset.objects.select_related("project", "created_by").get(id=dataset_id)
    try:
        dataset_check_readable(dataset)  # again here: a grant may have been taken back since
        data = dict(dataset.data)
        if dataset.kind == Dataset.Kind.UPLOAD:  # read on a machine that may not have its local copy yet
            from layerlab.apps.datasets.uploads import upload_restore

            data["path"] = upload_restore(data.get("path", ""))
        cfg = from_mapping(DataConfig, data, "data")
        report = prepare_data(cfg, seed=0, cache_dir=settings.LAYERLAB_CACHE_DIR).report
        info = {"status": "ready", **dataclasses.asdict(report)}
        info = json.loads(json.dumps(info, default=str))
        info["source"] = message_redact(
            str(info.get("source", "")), paths=[data.get("path")], label=dataset.name
        )
    except LayerlabError as exc:
        info = {"status": "error", "error": dataset_error_text(dataset, exc.one_line())}
    except Exception as exc:  # a broken file (dangling link, unreadable folder) fails, never stays pending
        log.warning("dataset %s could not be read: %s", dataset_id, exc)
        info = {"status": "error", "error": dataset_error_text(dataset, unreadable_text(exc))}
    Dataset.objects.filter(id=dataset_id).update(info=info)
    return info


def unreadable_text(exc: BaseException) -> str:
    """An unexpected read failure in words, without the file's name or content."""
    if isinstance(exc, FileNotFoundError):
        what = "a file of the data is missing or a broken link"
    elif isinstance(exc, PermissionError):
        what = "a file of the data cannot be read (permissions)"
    elif isinstance(exc, UnicodeError):
        what = "the file is not UTF-8 text"
    elif isinstance(exc, OSError):
        what = "a file of the data cannot be read"
    else:
        what = f"the data cannot be read ({type(exc).__name__})"
    return f"data: {what}"


def dataset_info_public(dataset: Dataset) -> dict:
    """``info`` as users see it: the source and any error without server paths."""
    info = dict(dataset.info or {})
    path = (dataset.data or {}).get("path")
    if isinstance(info.get("source"), str):
        info["source"] = message_redact(info["source"], paths=[path], label=dataset.name)
    if isinstance(info.get("error"), str):
        info["error"] = dataset_error_text(dataset, info["error"])
    return info


def dataset_error_text(dataset: Dataset, text: str) -> str:
    """An engine message about the dataset with its server paths replaced by the dataset's name."""
    return message_redact(text, paths=[(dataset.data or {}).get("path")], label=f"dataset '{dataset.name}'")


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
    """Delete the record; after commit its decoded cache, and an upload's files unless still needed.

    An upload's files stay while another dataset names the same path or a queued or running run
    reads the dataset (finished runs keep their weights; fine-tuning them needs the data again).
    """
    data = dict(dataset.data or {})
    path = data.get("path")
    keep = bool(path) and (
        Dataset.objects.filter(data__path=path).exclude(id=dataset.id).exists()
        or dataset.runs.filter(status__in=("queued", "running")).exists()
    )
    kind = dataset.kind
    dataset.delete()
    if path:
        transaction.on_commit(lambda: dataset_files_delete(data=data, kind=kind, keep_upload=keep))


def upload_key(path: str) -> tuple[str, str] | None:
    """``(project, uuid)`` of an upload's data path (``.../uploads/<p>/<uuid>/...`` or ``.../datasets/<p>/<uuid>/...``)."""
    parts = Path(path).parts
    for index in range(len(parts) - 3, -1, -1):
        if (
            parts[index] in ("uploads", "datasets")
            and parts[index + 1].isdigit()
            and len(parts[index + 2]) == 32
        ):
            return parts[index + 1], parts[index + 2]
    return None


def dataset_files_delete(*, data: dict, kind: str, keep_upload: bool = False) -> None:
    """Remove the decoded cache entry of a data section and, for an upload, its stored and local files."""
    import contextlib
    import shutil

    from django.conf import settings
    from django.core.files.storage import default_storage

    from layerlab.data.cache import cache_key
    from layerlab.data.sources import source_fingerprint

    try:
        fingerprint = source_fingerprint(from_mapping(DataConfig, data, "data"))
        if fingerprint is not None:
            shutil.rmtree(Path(settings.LAYERLAB_CACHE_DIR) / cache_key(fingerprint), ignore_errors=True)
    except Exception:  # files already gone: there is no entry to find
        log.info("no decoded cache found for a deleted dataset")
    key = upload_key(data.get("path") or "") if kind == Dataset.Kind.UPLOAD else None
    if key is None or keep_upload:
        return
    project, name = key
    shutil.rmtree(Path(settings.LAYERLAB_CACHE_DIR) / "uploads" / project / name, ignore_errors=True)
    prefix = f"datasets/{project}/{name}"
    try:
        for stored in default_storage.listdir(prefix)[1]:
            default_storage.delete(f"{prefix}/{stored}")
    except (FileNotFoundError, NotImplementedError):
        return
    location = getattr(default_storage, "location", None)
    if location:  # the empty <project>/<uuid> folder of a file-system storage
        with contextlib.suppress(OSError):
            (Path(location) / prefix).rmdir()
