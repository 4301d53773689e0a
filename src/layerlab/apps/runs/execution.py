"""Executing a queued run on a worker: the engine does the training, a callback writes progress here."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F
from django.utils import timezone

from layerlab.apps.datasets.uploads import upload_restore
from layerlab.apps.runs.files import (
    run_dir_restore,
    run_files_publish,
)
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.recorder import Heartbeat, RunLeaseLost, RunRecorder
from layerlab.apps.runs.references import run_error_text
from layerlab.apps.runs.services import run_dir_for, run_finished
from layerlab.core.errors import LayerlabError
from layerlab.core.runlayout import END_FILES, METRICS, has_checkpoints
from layerlab.train.threads import threads_for, use_threads

log = logging.getLogger("layerlab.runs")

# Called with a run before it trains; each returns engine callbacks to add (the sweeps app's pruner).
# A callback whose ``pruned`` attribute is true when training ends makes the run ``pruned``.
run_callback_factories: list = []


def run_extra_callbacks(run: Run) -> list:
    """The callbacks the registered factories add to this run's training."""
    return [cb for factory in list(run_callback_factories) for cb in factory(run)]


def worker_host() -> str:
    """This machine's name among the lab's workers: ``LAYERLAB_WORKER_NAME``, else its host name."""
    return getattr(settings, "LAYERLAB_WORKER_NAME", "") or socket.gethostname()


def worker_identity() -> str:
    """``host:pid`` of this process (``worker_host()``), stored on the run it executes."""
    return f"{worker_host()}:{os.getpid()}"


@transaction.atomic
def run_claim(run_id: int) -> int | None:
    """Move the run from queued to running under a new lease and return it (1 or more); None when
    another execution got it first (or it was cancelled)."""
    claimed = Run.objects.filter(id=run_id, status=Run.Status.QUEUED).update(
        status=Run.Status.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        worker=worker_identity(),
        attempts=F("attempts") + 1,
        lease=F("lease") + 1,
    )
    if not claimed:
        return None
    return Run.objects.filter(id=run_id).values_list("lease", flat=True).get()


def json_default(value):
    """JSON for what an engine summary may hold: dataclasses, paths, numpy values, anything else as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | tuple):
        return list(value)
    return str(value)


def json_safe(value) -> dict:
    """A JSON-storable copy of ``value`` (NaN becomes null)."""
    text = json.dumps(value, default=json_default)
    return json.loads(text, parse_constant=lambda _: None)


def has_checkpoint(run_dir: Path) -> bool:
    return has_checkpoints(run_dir)


def run_config_local(run: Run) -> dict:
    """The run's config with its files on this machine: an uploaded dataset made from the storage
    when its local copy is missing, and ``model.init_from`` pointing at a local copy of the parent's
    best checkpoint when the parent's run directory is not here (fine-tunes on any worker)."""
    import copy

    from layerlab.apps.runs.references import run_config_check

    # The paths checked again for the run's creator, init_from made a local checkpoint file.
    mapping = run_config_check(run=run, mapping=copy.deepcopy(run.config))
    data = mapping.get("data") or {}
    if data.get("path"):
        data["path"] = upload_restore(data["path"])
    return mapping


def train_experiment(cfg, run_dir, **kwargs):
    """The engine's entry point (imported late: workers load torch only when they train)."""
    from layerlab.train.runner import train_experiment as engine_train

    return engine_train(cfg, run_dir, **kwargs)


def train_threads() -> int:
    """CPU threads for a run whose config does not set ``train.num_threads``: ``LAYERLAB_TRAIN_THREADS``
    when set, else the usable cores divided among the trainings of this host, the larger of
    ``LAYERLAB_CONCURRENT_TRAININGS`` (``serve --workers N``, ``worker --concurrency N``) and the runs
    running on this host now (this one included), so concurrent trainings do not oversubscribe the cores."""
    if settings.LAYERLAB_TRAIN_THREADS > 0:
        return settings.LAYERLAB_TRAIN_THREADS
    here = Run.objects.filter(status=Run.Status.RUNNING, worker__startswith=f"{worker_host()}:")
    return threads_for(max(1, settings.LAYERLAB_CONCURRENT_TRAININGS, here.count()))


def run_execute(*, run_id: int) -> str:
    """Train a queued run with the engine and record the outcome; returns the final status.

    Executed at most once at a time: the queued -> running transition is a conditional update that
    takes a new lease. A run directory that already holds checkpoints (a resumed or recovered run)
    continues from them. An execution that loses its lease (paused past the heartbeat timeout, its run
    given to another worker) stops at its next write and leaves the run alone: returns ``lost``.
    """
    from layerlab.train.config import experiment_from_mapping

    close_old_connections()
    lease = run_claim(run_id)
    if lease is None:
        return Run.objects.filter(id=run_id).values_list("status", flat=True).first() or "missing"
    run = Run.objects.get(id=run_id)
    run_dir = run_dir_for(run)
    recorder = RunRecorder(run_id, lease=lease, max_seconds=settings.LAYERLAB_MAX_RUN_SECONDS)
    fields: dict = {}
    extra: list = []
    try:
        if run.checkpoints.exists():  # resumed or recovered, maybe on a machine without its files
            run_dir_restore(run=run)
        elif not has_checkpoint(run_dir):  # an attempt that died before its first checkpoint
            (run_dir / METRICS).unlink(missing_ok=True)
        mapping = run_config_local(run)
        cfg = experiment_from_mapping(mapping)
        extra = run_extra_callbacks(run)
        group = cfg.train.distributed.world_size > 1
        if not cfg.train.num_threads and not group:  # the engine records what it trained with
            log.info("run %s: %s CPU thread(s)", run_id, use_threads(train_threads()))
        with Heartbeat(run_id, settings.LAYERLAB_HEARTBEAT_SECONDS, lease=lease):
            if group:  # a torchrun group on this machine; its rank 0 records under this lease
                from layerlab.apps.runs.group import run_train_group

                summary = run_train_group(
                    run_id=run_id,
                    lease=lease,
                    recorder=recorder,
                    cfg=cfg,
                    mapping=mapping,
                    run_dir=run_dir,
                    resume=has_checkpoint(run_dir),
                    cache_dir=settings.LAYERLAB_CACHE_DIR,
                    # DDP ranks on one host divide the cores as concurrent trainings do
                    threads=max(1, train_threads() // cfg.train.distributed.nproc_per_node),
                )
            else:
                summary = train_experiment(
                    cfg,
                    run_dir,
                    resume=has_checkpoint(run_dir),
                    device="auto",
                    callbacks=[recorder, *extra],
                    cache_dir=settings.LAYERLAB_CACHE_DIR,
                )
    except RunLeaseLost:
        with contextlib.suppress(Exception):  # the writer thread ends; its error is this one
            recorder.close()
        return run_lost(run_id, lease)
    except LayerlabError as exc:
        fields = {"status": Run.Status.FAILED, "error": run_error_text(run, exc.one_line())}
    except Exception as exc:  # any failure ends as 'failed' with the reason in words, never a stuck run
        # A paused execution woken after a take-over can fail on files its successor tidied (a
        # checkpoint's temporary file): that failure is the lost lease, not the run's.
        with contextlib.suppress(Exception):  # the writer's queued points first: one writer at a time
            recorder.flush()
        if not recorder.owned().exists():
            with contextlib.suppress(Exception):
                recorder.close()
            return run_lost(run_id, lease)
        log.exception("run %s failed", run_id)
        error = run_error_text(run, f"internal error: {type(exc).__name__}")  # its message may quote a file
        fields = {"status": Run.Status.FAILED, "error": error}
    else:
        summary = json_safe(summary) if isinstance(summary, dict) else {}
    try:  # whatever the outcome, what the engine wrote is kept (a failed run may be resumed elsewhere)
        recorder.close()  # the points still queued (a crash of the engine loses none of them)
        recorder.check()
        run_files_publish(run=run, relatives=END_FILES)
    except RunLeaseLost:
        return run_lost(run_id, lease)
    except Exception as exc:
        log.exception("run %s: publishing its files failed", run_id)
        if fields.get("status") != Run.Status.FAILED:
            fields = {"status": Run.Status.FAILED, "error": f"storing the run's files failed: {exc}"}
    if not fields:
        status = Run.Status.CANCELLED if recorder.cancelled else Run.Status.SUCCEEDED
        if recorder.group_pruned or any(getattr(cb, "pruned", False) for cb in extra):
            status = Run.Status.PRUNED
        fields = {"status": status, "summary": summary, "verdict": str(summary.get("verdict", "") or "")}
        if summary.get("epochs"):
            fields["epoch"] = int(summary["epochs"])
        if recorder.timed_out:
            fields.update(
                status=Run.Status.FAILED,
                error=f"stopped after this lab's time limit of {recorder.max_seconds} s per run "
                "(LAYERLAB_MAX_RUN_SECONDS); resume it to train on from its last checkpoint",
            )
    with transaction.atomic():
        if not recorder.owned().update(finished_at=timezone.now(), heartbeat_at=timezone.now(), **fields):
            return run_lost(run_id, lease)
        run = Run.objects.get(id=run_id)
        run_finished(run)
    return run.status


def run_lost(run_id: int, lease: int) -> str:
    """An execution that lost its run stops quietly: the run, its metrics and files are its new owner's."""
    log.warning(
        "run %s: lease %s was taken over (this worker was paused or cut off past the heartbeat timeout); "
        "stopped without writing",
        run_id,
        lease,
    )
    return "lost"
