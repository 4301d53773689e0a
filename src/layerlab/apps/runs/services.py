"""Writes on runs: create (queue), cancel, resume, fine-tune, delete, open/close logged and CLI runs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from layerlab.apps.datasets.access import error_redacted
from layerlab.apps.datasets.models import Dataset
from layerlab.apps.datasets.selectors import dataset_list_visible
from layerlab.apps.networks.models import Network
from layerlab.apps.projects.models import Project
from layerlab.apps.runs.files import run_checkpoint_local, run_file_publish, run_working_dir
from layerlab.apps.runs.limits import config_limits_check, network_limits_check
from layerlab.apps.runs.models import Run, RunTag
from layerlab.apps.runs.tags import tags_clean
from layerlab.core import runlayout
from layerlab.core.errors import ConfigError, LayerlabError
from layerlab.train.config import experiment_from_mapping

# Called with the run after it reached a finished status (the journal registers here).
run_finished_hooks: list[Callable[[Run], None]] = []


class RunError(LayerlabError):
    """A run action is not possible in the run's state."""

    kind = "run_error"


def run_dir_for(run: Run) -> Path:
    """Where a run's files live: ``LAYERLAB_HOME/runs/<id>``."""
    return Path(settings.LAYERLAB_RUNS_DIR) / str(run.id)


def model_section(network: Network) -> dict:
    """The experiment's ``model`` section for a saved network (layers, or a preset with options)."""
    spec = network.spec
    if "layers" in spec:
        return {"layers": spec["layers"]}
    return {key: spec[key] for key in ("preset", "options") if key in spec}


def config_resolve(
    config: dict,
    *,
    network: Network | None,
    dataset: Dataset | None,
    overrides=(),
    check: Callable | None = None,
) -> dict:
    """Merge saved network/dataset into a config mapping and check it with the engine.

    Args:
        check: called with the parsed config (overrides applied) before anything is read from disk
            (``references.config_paths_check``: which server files the user may have read).
    """
    mapping = copy.deepcopy(config or {})
    if not isinstance(mapping, dict):
        raise ConfigError("config must be a JSON object with seed, data, model, train", where="config")
    if network is not None:
        mapping["model"] = {**mapping.get("model", {}), **model_section(network)}
    if dataset is not None:
        data = dict(mapping.get("data") or {})
        data.pop("dataset", None)  # named by ``data.dataset`` (also the public form, ``config_public``)
        mapping["data"] = {**dataset.data, **data}
    cfg = experiment_from_mapping(mapping, list(overrides))
    config_limits_check(cfg)  # the administrator's caps, before any file is looked at
    if check is not None:
        check(cfg)
    try:
        network_check(cfg)
    except LayerlabError as exc:  # the engine names files by their server paths
        label = f"dataset '{dataset.name}'" if dataset is not None else "the data"
        raise error_redacted(exc, paths=[cfg.data.path], label=label) from None
    network_limits_check(cfg)
    return cfg.to_dict()


def config_dataset(config: dict | None, *, user, project: Project, dataset: Dataset | None) -> Dataset | None:
    """The saved dataset a config names as ``data.dataset`` (an id, or a name in ``project``), else ``dataset``.

    The dataset must be one the user may see (any of their projects); missing and invisible read the same.
    """
    data = (config or {}).get("data") if isinstance(config, dict) else None
    ref = data.get("dataset") if isinstance(data, dict) else None
    if ref is None or (dataset is not None and ref in (dataset.id, dataset.name)):
        return dataset
    visible = dataset_list_visible(user=user)
    if isinstance(ref, int) and not isinstance(ref, bool):
        found = visible.filter(id=ref).first()
    elif isinstance(ref, str) and ref.isdigit():
        found = visible.filter(id=int(ref)).first()
    elif isinstance(ref, str):
        found = visible.filter(project=project, name=ref).first()
    else:
        found = None
    if found is None:
        raise ConfigError(
            f"data.dataset {ref!r} is not a dataset you may see",
            hint="give a dataset's id, or the name of a dataset of this project",
            where="data.dataset",
        )
    if dataset is not None and found.id != dataset.id:
        raise ConfigError("data.dataset and dataset name different datasets", where="data.dataset")
    return found


def network_check(cfg) -> None:
    """Check the network against the data's shape now (400 at POST), not minutes later on a worker.

    The same check a run makes before importing (``network_for_data``): the shape comes from the
    config and array headers; CSV files, known only once read, are checked by the worker.
    """
    from layerlab.nn.resolve import network_for_data

    network_for_data(cfg.model, cfg.data)


def config_defaults() -> dict:
    """The engine's own defaults the dashboard's forms start from, so a form never disagrees with ``train``."""
    from layerlab.data.config import SplitConfig
    from layerlab.train.config import TrainConfig

    train, split = TrainConfig(), SplitConfig()
    return {
        "epochs": train.epochs,
        "lr": train.lr,
        "batch_size": train.batch_size,
        "split_val": split.val,
        "split_test": split.test,
    }


def config_check(*, config: dict, overrides: list[str] | tuple[str, ...] = ()) -> None:
    """Check a config mapping and its ``key.path=value`` overrides with the engine (no network build).

    Raises the engine's ``ConfigError`` (its ``where`` names the key); the new-run page's live check.
    The lab's caps (``runs.limits``) are checked too, so the page says what the submit would.
    """
    config_limits_check(experiment_from_mapping(copy.deepcopy(config), list(overrides)))


def run_enqueue_on_commit(run_id: int) -> None:
    """Queue the execution job once the surrounding transaction commits (ID only)."""
    from layerlab.apps.runs.tasks import run_train_task

    transaction.on_commit(lambda: run_train_task.enqueue(run_id))


@transaction.atomic
def run_create(
    *,
    project: Project,
    user,
    config: dict | None = None,
    name: str = "",
    network: Network | None = None,
    dataset: Dataset | None = None,
    parent: Run | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    tags: list[str] | tuple[str, ...] = (),
) -> Run:
    """Check the config, save the run as ``queued`` and enqueue its job after commit.

    Args:
        project: where the run lives (the caller checked the editor role).
        config: the experiment mapping (same structure as the CLI's YAML).
        network, dataset: saved objects whose spec / data section replace the config's.
        parent: the run this one is fine-tuned from (lineage).
        overrides: ``key.path=value`` edits, as ``--set`` on the command line.
        tags: short labels (see ``runs.tags``).
    """
    tags = tags_clean(tags)
    from layerlab.apps.runs.references import config_paths_check

    dataset = config_dataset(config, user=user, project=project, dataset=dataset)
    if network is not None and network.project_id != project.id:
        raise RunError(f"network '{network.name}' belongs to another project", where="network")
    if dataset is not None and not dataset_list_visible(user=user).filter(id=dataset.id).exists():
        raise ConfigError("data.dataset is not a dataset you may see", where="data.dataset")
    resolved = config_resolve(
        config or {},
        network=network,
        dataset=dataset,
        overrides=overrides,
        check=lambda cfg: config_paths_check(cfg=cfg, user=user, project=project, dataset=dataset),
    )
    name = name or resolved.get("name") or ""
    if name:  # the resolved config names the run as its row does (not ``name: null``)
        resolved["name"] = name
    run = Run.objects.create(
        project=project,
        name=name,
        config=resolved,
        network=network,
        dataset=dataset,
        parent=parent,
        created_by=user,
        epochs=resolved["train"]["epochs"],
    )
    run.run_dir = str(run_dir_for(run))
    run.save(update_fields=["run_dir"])
    run_tags_write(run, tags)
    run_enqueue_on_commit(run.id)
    return run


def run_tags_write(run: Run, tags: list[str]) -> None:
    """Replace the run's tag rows with ``tags`` (already clean)."""
    RunTag.objects.filter(run=run).exclude(name__in=tags).delete()
    have = set(RunTag.objects.filter(run=run).values_list("name", flat=True))
    RunTag.objects.bulk_create([RunTag(run=run, name=tag) for tag in tags if tag not in have])


@transaction.atomic
def run_tags_set(*, run: Run, tags: list[str] | tuple[str, ...] | str) -> list[str]:
    """Set a run's tags (any status); returns them, cleaned.

    Args:
        tags: the whole new list (a string is split on commas); ``[]`` removes every tag.
    """
    clean = tags_clean(tags)
    run_tags_write(run, clean)
    return clean


@transaction.atomic
def run_rename(*, run: Run, name: str) -> Run:
    """Give a run a new name (any status; blank shows as ``run <id>``)."""
    name = (name or "").strip()
    if len(name) > 200:
        raise RunError("the name is longer than 200 characters", where="name")
    Run.objects.filter(id=run.id).update(name=name)
    run.name = name
    return run


@transaction.atomic
def run_rerun(
    *,
    run: Run,
    user,
    config: dict | None = None,
    overrides=(),
    name: str = "",
    tags: list[str] | tuple[str, ...] | None = None,
) -> Run:
    """A new run with this run's config (any status, any origin), edited; queued for a worker.

    Unlike fine-tuning it starts from scratch (an ``init_from`` of the original stays only when it had one).

    Args:
        config: a partial mapping merged section by section over the run's config.
        overrides: ``key.path=value`` edits, e.g. ``train.lr=0.0001``.
        name: the new run's name (default: the original's name and "again").
        tags: the new run's tags (default: the original's).
    """
    mapping = copy.deepcopy(run.config or {})
    if not isinstance(config or {}, dict):
        raise ConfigError("config is a JSON object of the sections to change", where="config")
    for section, value in (config or {}).items():
        if isinstance(value, dict) and isinstance(mapping.get(section), dict):
            mapping[section] = {**mapping[section], **value}
        else:
            mapping[section] = value
    mapping["name"] = name or f"{run.name or f'run {run.id}'} again"
    init = (mapping.get("model") or {}).get("init_from") if isinstance(mapping.get("model"), dict) else None
    if init and run.parent_id and init == run.parent.run_dir:  # recorded before run references
        mapping["model"]["init_from"] = f"run:{run.parent_id}"
    if tags is None:
        tags = list(run.tags.values_list("name", flat=True))
    return run_create(
        project=run.project,
        user=user,
        config=mapping,
        name=mapping["name"],
        dataset=run.dataset if run.dataset and run.dataset.project_id == run.project_id else None,
        overrides=overrides,
        tags=tags,
    )


@transaction.atomic
def run_cancel(*, run: Run) -> Run:
    """Cancel a queued run now; ask a running one to stop after its current step."""
    run = Run.objects.select_for_update().get(id=run.id)
    # A logged run has no worker to ask: it stops being open now (its script may still send points).
    # So does a `layerlab train` run whose process stopped beating (killed, machine gone).
    stale = run.heartbeat_at is None or run.heartbeat_at < timezone.now() - timedelta(
        seconds=settings.LAYERLAB_STALE_SECONDS
    )
    if run.status == Run.Status.QUEUED or (
        run.status == Run.Status.RUNNING
        and (run.origin == Run.Origin.CLIENT or (run.origin == Run.Origin.CLI and stale))
    ):
        run.status = Run.Status.CANCELLED
        run.finished_at = timezone.now()
        run.cancel_requested = True
        run.save(update_fields=["status", "finished_at", "cancel_requested"])
        run_finished(run)
    elif run.status == Run.Status.RUNNING:
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested"])
    else:
        raise RunError(
            f"run {run.id} is already {run.status}", hint="only queued or running runs can be cancelled"
        )
    return run


@transaction.atomic
def run_resume(*, run: Run) -> Run:
    """Queue a failed or cancelled run again; it continues from its last checkpoint."""
    run = Run.objects.select_for_update().get(id=run.id)
    if run.status not in (Run.Status.FAILED, Run.Status.CANCELLED):
        raise RunError(f"run {run.id} is {run.status}", hint="only failed or cancelled runs can be resumed")
    if run.origin != Run.Origin.SERVER:
        raise RunError(f"run {run.id} was trained outside the lab", hint="resume it where it was trained")
    run.status = Run.Status.QUEUED
    run.cancel_requested = False
    run.error = ""
    run.finished_at = None
    run.attempts = 0
    run.save(update_fields=["status", "cancel_requested", "error", "finished_at", "attempts"])
    run_enqueue_on_commit(run.id)
    return run


@transaction.atomic
def run_finetune(*, run: Run, user, config: dict | None = None, overrides=(), name: str = "") -> Run:
    """A new run initialized from this run's weights (``model.init_from``), with edits.

    Args:
        config: a partial mapping merged section by section over the parent's config.
        overrides: ``key.path=value`` edits, e.g. ``train.lr=0.0001``.
    """
    if run.status != Run.Status.SUCCEEDED:
        raise RunError(f"run {run.id} is {run.status}", hint="fine-tune from a succeeded run")
    if run.origin != Run.Origin.SERVER:
        raise RunError(f"run {run.id} was trained outside the lab; its weights are not here", where="run")
    mapping = copy.deepcopy(run.config)
    for section, value in (config or {}).items():
        if isinstance(value, dict) and isinstance(mapping.get(section), dict):
            mapping[section] = {**mapping[section], **value}
        else:
            mapping[section] = value
    mapping.setdefault("model", {})["init_from"] = f"run:{run.id}"  # resolved to a file on the worker
    mapping["name"] = name or f"{run.name or f'run {run.id}'} fine-tuned"
    dataset = run.dataset
    data = mapping.get("data") or {}
    if dataset is not None and data.get("path") != (dataset.data or {}).get("path"):
        dataset = None  # the edits name other data: checked as a path of their own
    return run_create(
        project=run.project,
        user=user,
        config=mapping,
        name=mapping["name"],
        dataset=dataset,
        parent=run,
        overrides=overrides,
    )


def run_export(*, run: Run, fmt: str) -> Path:
    """Export the run's best weights as ``fmt`` (safetensors, torchscript, onnx), checked against the eager model.

    Reads the best checkpoint from the working directory or the storage, writes
    ``<working dir>/export/model.<ext>`` and publishes it into the storage; returns the local file.
    """
    from layerlab.inference.export import FORMATS, export_model  # heavy (torch, onnx): imported when asked

    checkpoint = run_checkpoint_local(run=run)
    out = run_working_dir(run) / runlayout.EXPORT_DIR / f"model.{FORMATS.get(fmt, fmt)}"
    path = export_model(checkpoint, fmt, out=out)
    run_file_publish(run=run, path=path)
    return path


@transaction.atomic
def run_delete(*, run: Run) -> None:
    """Delete a finished run's records (its files stay under the run directory)."""
    if run.status == Run.Status.RUNNING:
        raise RunError(f"run {run.id} is running", hint="cancel it first")
    run.delete()


def run_finished(run: Run) -> None:
    """Tell the registered hooks (the journal) that a run finished, after commit."""
    for hook in list(run_finished_hooks):
        transaction.on_commit(lambda hook=hook: hook(Run.objects.get(id=run.id)))


@transaction.atomic
def run_start_external(*, project: Project, user, name: str = "", config: dict | None = None, tags=()) -> Run:
    """A run trained outside the lab (any script), which logs its metrics through the API; starts ``running``."""
    tags = tags_clean(tags)
    now = timezone.now()
    run = Run.objects.create(
        project=project,
        name=name,
        origin=Run.Origin.CLIENT,
        status=Run.Status.RUNNING,
        config=config or {},
        created_by=user,
        started_at=now,
        heartbeat_at=now,
        attempts=1,
    )
    run_tags_write(run, tags)
    return run


@transaction.atomic
def run_finish_external(*, run: Run, status: str, summary: dict | None = None, error: str = "") -> Run:
    """Close a run started with ``run_start_external`` as succeeded, failed or cancelled."""
    run = Run.objects.select_for_update().get(id=run.id)
    if run.origin != Run.Origin.CLIENT:
        raise RunError(f"run {run.id} is trained by a worker", hint="use cancel instead", where="run")
    if run.status != Run.Status.RUNNING:
        raise RunError(f"run {run.id} is already {run.status}")
    if status not in Run.FINISHED:
        raise RunError(f"status '{status}' is not one of succeeded, failed, cancelled", where="status")
    run.status = status
    run.summary = summary or {}
    run.verdict = str(run.summary.get("verdict", "") or "")
    run.error = error
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "summary", "verdict", "error", "finished_at"])
    run_finished(run)
    return run


@transaction.atomic
def run_start_local(
    *,
    project: Project,
    user,
    name: str = "",
    config: dict,
    run_dir: str | Path,
    resume: bool = False,
    worker: str = "",
    tags=(),
) -> Run:
    """A run trained by ``layerlab train`` in the calling process: ``running``, origin ``cli``.

    The run directory identifies it: resuming a directory recorded before (``--resume DIR``)
    continues its newest row (same id, metrics upserted by epoch), whatever project is named now.

    Args:
        project: where a new run lives (the caller checked the editor role).
        config: the resolved experiment config (``ExperimentConfig.to_dict()``).
        run_dir: the engine's run directory (stored absolute).
        resume: the engine continues ``run_dir``; without it a new row is always made.
        worker: ``host:pid`` of the training process.
        tags: the run's tags (a resumed run keeps its own unless new ones are given).
    """
    tags = tags_clean(tags)
    run_dir = str(Path(run_dir).resolve())
    now = timezone.now()
    epochs = int((config.get("train") or {}).get("epochs") or 0)
    run = None
    if resume:
        run = Run.objects.select_for_update().filter(run_dir=run_dir, origin=Run.Origin.CLI).first()
    if run is None:
        run = Run.objects.create(
            project=project,
            name=name or config.get("name") or "",
            origin=Run.Origin.CLI,
            status=Run.Status.RUNNING,
            config=config,
            created_by=user,
            epochs=epochs,
            started_at=now,
            heartbeat_at=now,
            attempts=1,
            worker=worker,
            run_dir=run_dir,
        )
        run_tags_write(run, tags)
        return run
    if tags:
        run_tags_write(run, tags)
    run.status = Run.Status.RUNNING
    run.config, run.epochs, run.worker, run.heartbeat_at = config, epochs, worker, now
    run.error, run.finished_at, run.cancel_requested = "", None, False
    run.attempts += 1
    run.lease += 1  # a process still recording this directory's run stops recording it
    run.save()
    return run


@transaction.atomic
def run_finish_local(*, run_id: int, status: str, summary: dict | None = None, error: str = "") -> Run:
    """Close a run opened with ``run_start_local`` (succeeded, failed or cancelled); the journal hears of it.

    Args:
        summary: the engine's summary (JSON-safe); its ``epochs`` becomes the run's progress.
        error: the failure in words.
    """
    if status not in Run.FINISHED:
        raise RunError(f"status '{status}' is not one of succeeded, failed, cancelled", where="status")
    run = Run.objects.select_for_update().get(id=run_id)
    run.status = status
    run.summary = summary or {}
    run.verdict = str(run.summary.get("verdict", "") or "")
    run.error = error
    run.finished_at = run.heartbeat_at = timezone.now()
    if run.summary.get("epochs"):
        run.epoch = int(run.summary["epochs"])
    run.save()
    run_finished(run)
    return run
