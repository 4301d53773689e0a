"""Writes on runs: create (queue), cancel, resume, fine-tune, delete, open/close logged and CLI runs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from layerlab.apps.datasets.models import Dataset
from layerlab.apps.datasets.services import path_allowed
from layerlab.apps.networks.models import Network
from layerlab.apps.projects.models import Project
from layerlab.apps.runs.files import run_checkpoint_local, run_file_publish, run_working_dir
from layerlab.apps.runs.models import Run
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


def config_resolve(config: dict, *, network: Network | None, dataset: Dataset | None, overrides=()) -> dict:
    """Merge saved network/dataset into a config mapping and check it with the engine."""
    mapping = copy.deepcopy(config or {})
    if not isinstance(mapping, dict):
        raise ConfigError("config must be a JSON object with seed, data, model, train", where="config")
    if network is not None:
        mapping["model"] = {**mapping.get("model", {}), **model_section(network)}
    if dataset is not None:
        mapping["data"] = {**dataset.data, **mapping.get("data", {})}
    cfg = experiment_from_mapping(mapping, list(overrides))
    network_check(cfg)
    return cfg.to_dict()


def network_check(cfg) -> None:
    """Check the network against the data's shape now (400 at POST), not minutes later on a worker.

    Skipped for array files, whose shape is only known once they are read (the worker checks them).
    """
    from layerlab.data.prepare import input_signature
    from layerlab.nn.resolve import network_for

    if cfg.data.source in ("npz", "npy", "csv"):
        return
    input_shape, num_classes = input_signature(cfg.data)
    network_for(cfg.model, input_shape=input_shape, num_classes=num_classes)


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
) -> Run:
    """Check the config, save the run as ``queued`` and enqueue its job after commit.

    Args:
        project: where the run lives (the caller checked the editor role).
        config: the experiment mapping (same structure as the CLI's YAML).
        network, dataset: saved objects whose spec / data section replace the config's.
        parent: the run this one is fine-tuned from (lineage).
        overrides: ``key.path=value`` edits, as ``--set`` on the command line.
    """
    for ref, kind in ((network, "network"), (dataset, "dataset")):
        if ref is not None and ref.project_id != project.id:
            raise RunError(f"{kind} '{ref.name}' belongs to another project", where=kind)
    resolved = config_resolve(config or {}, network=network, dataset=dataset, overrides=overrides)
    if resolved["data"].get("path"):
        path_allowed(resolved["data"]["path"], user)
    run = Run.objects.create(
        project=project,
        name=name or resolved.get("name") or "",
        config=resolved,
        network=network,
        dataset=dataset,
        parent=parent,
        created_by=user,
        epochs=resolved["train"]["epochs"],
    )
    run.run_dir = str(run_dir_for(run))
    run.save(update_fields=["run_dir"])
    run_enqueue_on_commit(run.id)
    return run


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
    mapping.setdefault("model", {})["init_from"] = run.run_dir
    mapping["name"] = name or f"{run.name or f'run {run.id}'} fine-tuned"
    return run_create(
        project=run.project,
        user=user,
        config=mapping,
        name=mapping["name"],
        parent=run,
        overrides=overrides,
    )


def run_export(*, run: Run, fmt: str) -> Path:
    """Export the run's best weights as ``fmt`` (safetensors, torchscript, onnx), checked against the eager model.

    Reads the best checkpoint from the working directory or the storage, writes
    ``<working dir>/export/model.<ext>`` and publishes it into the storage; returns the local file.
    """
    from layerlab.train.export import FORMATS, export_model  # heavy (torch, onnx): imported when asked

    checkpoint = run_checkpoint_local(run=run)
    out = run_working_dir(run) / "export" / f"model.{FORMATS.get(fmt, fmt)}"
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
def run_start_external(*, project: Project, user, name: str = "", config: dict | None = None) -> Run:
    """A run trained outside the lab (any script), which logs its metrics through the API; starts ``running``."""
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
    """
    run_dir = str(Path(run_dir).resolve())
    now = timezone.now()
    epochs = int((config.get("train") or {}).get("epochs") or 0)
    run = None
    if resume:
        run = Run.objects.select_for_update().filter(run_dir=run_dir, origin=Run.Origin.CLI).first()
    if run is None:
        return Run.objects.create(
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
    run.status = Run.Status.RUNNING
    run.config, run.epochs, run.worker, run.heartbeat_at = config, epochs, worker, now
    run.error, run.finished_at, run.cancel_requested = "", None, False
    run.attempts += 1
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
