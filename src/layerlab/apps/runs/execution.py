"""Executing a queued run on a worker: the engine does the training, a callback writes progress here."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import socket
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from layerlab.apps.datasets.uploads import upload_restore
from layerlab.apps.runs.files import (
    BEST,
    END_FILES,
    LAST,
    START_FILES,
    run_checkpoint_local,
    run_checkpoints_prune,
    run_dir_restore,
    run_file_publish,
    run_files_publish,
)
from layerlab.apps.runs.metrics import metric_rows_upsert
from layerlab.apps.runs.models import Checkpoint, Run
from layerlab.apps.runs.services import run_dir_for, run_finished
from layerlab.core.errors import LayerlabError
from layerlab.train.callbacks import Callback

log = logging.getLogger("layerlab.runs")

# How often (seconds) a running job checks whether its run was cancelled.
CANCEL_POLL_SECONDS = 0.5


def worker_identity() -> str:
    """``host:pid`` of this process, stored on the run it executes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def metric_points_store(run_id: int, step: int, values: dict) -> int:
    """Upsert the numeric values of one step (re-sent steps replace, never duplicate)."""
    rows = [
        (str(name), step, float(value))
        for name, value in values.items()
        if name != "epoch"
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    ]
    metric_rows_upsert(run_id, rows)
    return len(rows)


class RunRecorder(Callback):
    """Writes progress, per-epoch metrics and checkpoints of one run to the database; honours cancel.

    With ``publish`` (runs of workers) each checkpoint and the run's start files are also saved
    into the default storage (``runs.files``), so any machine can read them back.
    """

    publish = True

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.cancelled = False
        self.last_poll = 0.0
        self._run: Run | None = None

    @property
    def run(self) -> Run:
        if self._run is None:
            self._run = Run.objects.get(id=self.run_id)
        return self._run

    def on_run_start(self, info: dict) -> None:
        fields = {"heartbeat_at": timezone.now()}
        if info.get("epochs"):
            fields["epochs"] = int(info["epochs"])
        Run.objects.filter(id=self.run_id).update(**fields)
        if self.publish:
            run_files_publish(run=self.run, relatives=START_FILES)

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        with transaction.atomic():
            metric_points_store(self.run_id, epoch, metrics)
            Run.objects.filter(id=self.run_id).update(epoch=epoch, heartbeat_at=timezone.now())

    def on_checkpoint(self, path: Path, epoch: int) -> None:
        if self.publish:  # stored before it is listed, so a listed checkpoint can always be read
            run_file_publish(run=self.run, path=path)
        Checkpoint.objects.update_or_create(run_id=self.run_id, path=str(path), defaults={"epoch": epoch})
        if self.publish and Path(path).name not in (BEST, LAST):
            run_checkpoints_prune(run=self.run)

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self.cancelled and now - self.last_poll >= CANCEL_POLL_SECONDS:
            self.last_poll = now
            self.cancelled = Run.objects.filter(id=self.run_id, cancel_requested=True).exists()
        return self.cancelled


class Heartbeat:
    """A thread that stamps ``heartbeat_at`` so other workers can tell this run's worker is alive."""

    def __init__(self, run_id: int, every: float):
        self.run_id = run_id
        self.every = every
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.loop, name=f"heartbeat-{run_id}", daemon=True)

    def loop(self) -> None:
        try:
            while not self.stopped.wait(self.every):
                Run.objects.filter(id=self.run_id, status=Run.Status.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        finally:
            connection.close()  # the thread's own connection

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=5)


def run_claim(run_id: int) -> bool:
    """Move the run from queued to running; False when another execution got it first (or it was cancelled)."""
    claimed = Run.objects.filter(id=run_id, status=Run.Status.QUEUED).update(
        status=Run.Status.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        worker=worker_identity(),
        attempts=F("attempts") + 1,
    )
    return bool(claimed)


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
    return any((run_dir / "checkpoints").glob("*.ckpt"))


def run_config_local(run: Run) -> dict:
    """The run's config with its files on this machine: an uploaded dataset made from the storage
    when its local copy is missing, and ``model.init_from`` pointing at a local copy of the parent's
    best checkpoint when the parent's run directory is not here (fine-tunes on any worker)."""
    import copy

    mapping = copy.deepcopy(run.config)
    data = mapping.get("data") or {}
    if data.get("path"):
        data["path"] = upload_restore(data["path"])
    source = (mapping.get("model") or {}).get("init_from")
    if source and run.parent_id and not Path(source).exists():
        mapping["model"]["init_from"] = str(run_checkpoint_local(run=run.parent))
    return mapping


def train_experiment(cfg, run_dir, **kwargs):
    """The engine's entry point (imported late: workers load torch only when they train)."""
    from layerlab.train.runner import train_experiment as engine_train

    return engine_train(cfg, run_dir, **kwargs)


def run_execute(*, run_id: int) -> str:
    """Train a queued run with the engine and record the outcome; returns the final status.

    Executed at most once at a time: the queued -> running transition is a conditional update.
    A run directory that already holds checkpoints (a resumed or recovered run) continues from them.
    """
    from layerlab.train.config import experiment_from_mapping

    close_old_connections()
    if not run_claim(run_id):
        return Run.objects.filter(id=run_id).values_list("status", flat=True).first() or "missing"
    run = Run.objects.get(id=run_id)
    run_dir = run_dir_for(run)
    recorder = RunRecorder(run_id)
    fields: dict = {}
    try:
        if run.checkpoints.exists():  # resumed or recovered, maybe on a machine without its files
            run_dir_restore(run=run)
        cfg = experiment_from_mapping(run_config_local(run))
        with Heartbeat(run_id, settings.LAYERLAB_HEARTBEAT_SECONDS):
            summary = train_experiment(
                cfg,
                run_dir,
                resume=has_checkpoint(run_dir),
                device="auto",
                callbacks=[recorder],
                cache_dir=settings.LAYERLAB_CACHE_DIR,
            )
    except LayerlabError as exc:
        fields = {"status": Run.Status.FAILED, "error": exc.one_line()}
    except Exception as exc:  # any failure ends as 'failed' with the reason in words, never a stuck run
        log.exception("run %s failed", run_id)
        fields = {"status": Run.Status.FAILED, "error": f"internal error: {type(exc).__name__}: {exc}"}
    else:
        summary = json_safe(summary) if isinstance(summary, dict) else {}
    try:  # whatever the outcome, what the engine wrote is kept (a failed run may be resumed elsewhere)
        run_files_publish(run=run, relatives=END_FILES)
    except Exception as exc:
        log.exception("run %s: publishing its files failed", run_id)
        if fields.get("status") != Run.Status.FAILED:
            fields = {"status": Run.Status.FAILED, "error": f"storing the run's files failed: {exc}"}
    if not fields:
        status = Run.Status.CANCELLED if recorder.cancelled else Run.Status.SUCCEEDED
        fields = {"status": status, "summary": summary, "verdict": str(summary.get("verdict", "") or "")}
        if summary.get("epochs"):
            fields["epoch"] = int(summary["epochs"])
    with transaction.atomic():
        Run.objects.filter(id=run_id).update(
            finished_at=timezone.now(), heartbeat_at=timezone.now(), **fields
        )
        run = Run.objects.get(id=run_id)
        run_finished(run)
    return run.status
