"""Executing a queued run on a worker: the engine does the training, a callback writes progress here."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import queue
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
    run_checkpoints_prune,
    run_dir_restore,
    run_file_publish,
    run_file_relative,
    run_files_publish,
)
from layerlab.apps.runs.metrics import metric_rows_upsert
from layerlab.apps.runs.models import Checkpoint, Run
from layerlab.apps.runs.references import run_error_text
from layerlab.apps.runs.services import run_dir_for, run_finished
from layerlab.core.errors import LayerlabError
from layerlab.core.runlayout import END_FILES, KIND_LAST, KIND_NUMBERED, METRICS, START_FILES, has_checkpoints
from layerlab.train.callbacks import Callback
from layerlab.train.threads import threads_for, use_threads

log = logging.getLogger("layerlab.runs")

# How often (seconds) a running job checks whether its run was cancelled.
CANCEL_POLL_SECONDS = 0.5

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


def metric_rows_of(step: int, values: dict) -> list[tuple[str, int, float]]:
    """The ``(name, step, value)`` rows of one step's numeric, finite values (``epoch`` left out)."""
    return [
        (str(name), step, float(value))
        for name, value in values.items()
        if name != "epoch"
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    ]


def metric_points_store(run_id: int, step: int, values: dict) -> int:
    """Upsert the numeric values of one step (re-sent steps replace, never duplicate)."""
    rows = metric_rows_of(step, values)
    metric_rows_upsert(run_id, rows)
    return len(rows)


class RunLeaseLost(Exception):  # noqa: N818 (a signal to stop, not an error to show)
    """This execution no longer owns its run (recovery re-queued it, another worker claimed it, or it
    was closed): the engine stops at once and nothing more is written to the run or its files."""


class MetricWriter:
    """One thread that runs a recorder's writes in order, off the training thread.

    The queue is bounded: when the database falls behind, ``put`` blocks the training thread rather
    than dropping points. The first error of a write (``RunLeaseLost`` when the run was taken over)
    stops every later write and is raised in the training thread by the next ``put``, ``check`` or
    ``flush``, so the engine stops at its next hook. ``flush`` returns once every queued write is
    committed; a crash loses at most the writes queued since the last flush.
    """

    MAX_QUEUED = 256

    def __init__(self, name: str, maxsize: int = MAX_QUEUED):
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.loop, name=name, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        try:
            while True:
                job = self.queue.get()
                try:
                    if job is None:
                        return
                    if self.error is None:
                        job()
                except BaseException as exc:  # handed to the training thread, never swallowed
                    self.error = exc
                finally:
                    self.queue.task_done()
        finally:
            connection.close()  # the thread's own connection

    def check(self) -> None:
        """Raise the error of an earlier write, if any (cheap: called after every batch)."""
        if self.error is not None:
            raise self.error

    def put(self, job) -> None:
        self.check()
        self.queue.put(job)  # blocks while the queue is full

    def flush(self) -> None:
        """Wait until every queued write is committed; raise the first write's error."""
        if self.thread.is_alive():
            self.queue.join()
        self.check()

    def close(self) -> None:
        """Flush, then end the thread (idempotent)."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        self.check()


class RunRecorder(Callback):
    """Writes progress, per-epoch metrics and checkpoints of one run to the database; honours cancel.

    Per-epoch metrics and progress are written by a ``MetricWriter`` thread (with ``background``,
    the default unless the recorder starts inside a transaction, whose rows another connection could
    not see): the epochs of each ``WRITE_EVERY`` seconds in one transaction, flushed before every
    file the engine writes (checkpoints, the summary) and by ``close``.

    Every write is fenced by the run's ``lease`` (taken by ``run_claim``): it happens in one
    transaction with a conditional update that matches only while the run is ``running`` under this
    execution's lease, and raises ``RunLeaseLost`` otherwise (so does ``on_before_write``, before the
    engine writes a file). With ``publish`` (runs of workers) each checkpoint and the run's start
    files are also saved into the default storage (``runs.files``), so any machine can read them back.

    Args:
        run_id: the run.
        lease: the lease of this execution; None takes the run's current one (``layerlab train``).
    """

    publish = True
    # Seconds between two background writes: fast epochs are written together (one transaction).
    WRITE_EVERY = 1.0

    def __init__(
        self, run_id: int, lease: int | None = None, max_seconds: int = 0, background: bool | None = None
    ):
        self.run_id = run_id
        self._lease = lease
        self.background = background
        self.writer: MetricWriter | None = None
        self.pending: list[tuple[int, dict]] = []  # epochs not yet handed to the writer
        self.handed_at = 0.0
        self.cancelled = False
        # LAYERLAB_MAX_RUN_SECONDS for a worker's execution (0: no limit, as for `layerlab train`)
        self.deadline = time.monotonic() + max_seconds if max_seconds > 0 else None
        self.max_seconds = max_seconds
        self.timed_out = False
        self.last_poll = 0.0
        self._run: Run | None = None

    @property
    def run(self) -> Run:
        if self._run is None:
            self._run = Run.objects.get(id=self.run_id)
        return self._run

    @property
    def lease(self) -> int:
        if self._lease is None:
            self._lease = Run.objects.filter(id=self.run_id).values_list("lease", flat=True).get()
        return self._lease

    def owned(self):
        """The run, as a queryset matching only while this execution owns it."""
        return Run.objects.filter(id=self.run_id, lease=self.lease, status=Run.Status.RUNNING)

    def lost(self) -> RunLeaseLost:
        return RunLeaseLost(
            f"run {self.run_id} is no longer executed here (lease {self.lease} was taken over)"
        )

    def fence(self, **fields) -> None:
        """Stamp the run (heartbeat and ``fields``) if this execution still owns it, else raise
        ``RunLeaseLost``; inside a transaction the row stays ours until it commits."""
        if not self.owned().update(heartbeat_at=timezone.now(), **fields):
            raise self.lost()

    def check(self) -> None:
        """Raise ``RunLeaseLost`` unless this execution still owns the run (a plain query: it runs
        before every file the engine writes, each epoch's metrics row included)."""
        quote = connection.ops.quote_name
        sql = (
            f"SELECT 1 FROM {quote(Run._meta.db_table)} WHERE {quote('id')} = %s "
            f"AND {quote('lease')} = %s AND {quote('status')} = %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.run_id, self.lease, Run.Status.RUNNING])
            if cursor.fetchone() is None:
                raise self.lost()

    def hand_over(self) -> None:
        """Give the epochs buffered so far to the writer, as one write."""
        if self.pending:
            batch, self.pending = self.pending, []
            self.writer.put(lambda: self.store_epochs(batch))
        self.handed_at = time.monotonic()

    def flush(self) -> None:
        """Every buffered epoch committed (``RunLeaseLost`` when the writer found the run taken over)."""
        if self.writer is not None:
            self.hand_over()
            self.writer.flush()

    def close(self) -> None:
        """Flush and stop the writer thread; call once training is over, however it ended."""
        if self.writer is not None:
            try:
                self.hand_over()
            finally:
                self.writer.close()

    def on_before_write(self, trainer, what: str) -> None:
        if what != "metrics":  # a checkpoint or the summary: the database has every point before it
            self.flush()
        elif self.writer is not None:
            self.writer.check()
        self.check()  # every epoch's metrics.jsonl row too: a lost run's files are not ours

    def on_run_start(self, trainer, info: dict) -> None:
        fields = {"epochs": int(info["epochs"])} if info.get("epochs") else {}
        self.fence(**fields)
        if self.publish:
            run_files_publish(run=self.run, relatives=START_FILES)
        background = not connection.in_atomic_block if self.background is None else self.background
        if background and self.writer is None:
            self.writer = MetricWriter(f"metrics-{self.run_id}")

    def store_epochs(self, batch: list[tuple[int, dict]]) -> None:
        """Epochs' metrics and the last one's progress, in one transaction."""
        with transaction.atomic():  # the fence first: a lost run gets none of these points
            self.fence(epoch=batch[-1][0])
            metric_rows_upsert(
                self.run_id, [r for epoch, metrics in batch for r in metric_rows_of(epoch, metrics)]
            )

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        if self.writer is None:
            self.store_epochs([(epoch, metrics)])
            return
        self.writer.check()
        self.pending.append((epoch, dict(metrics)))  # a copy: the engine's row may change later
        if time.monotonic() - self.handed_at >= self.WRITE_EVERY:
            self.hand_over()

    def on_run_end(self, trainer, summary: dict) -> None:
        self.flush()

    def on_checkpoint(self, trainer, path: Path, epoch: int, kind: str) -> None:
        self.flush()
        if self.publish:  # stored before it is listed, so a listed checkpoint can always be read
            self.check()
            if kind == KIND_LAST:  # the epochs so far, so a resume on another machine keeps them
                run_file_publish(run=self.run, path=METRICS)
            run_file_publish(run=self.run, path=path)
        with transaction.atomic():
            self.fence()
            checkpoint_record(self.run, path, epoch)
        if self.publish and kind == KIND_NUMBERED:
            run_checkpoints_prune(run=self.run)

    def should_stop(self, trainer=None) -> bool:
        if self.writer is not None:
            self.writer.check()  # a lost lease found by the writer stops training here
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline and not self.timed_out:
            self.timed_out = self.cancelled = True  # stops like a cancel: the last checkpoint is kept
        if not self.cancelled and now - self.last_poll >= CANCEL_POLL_SECONDS:
            self.last_poll = now
            row = Run.objects.filter(id=self.run_id).values("lease", "status", "cancel_requested").first()
            if row is None or row["lease"] != self.lease:
                raise self.lost()
            self.cancelled = bool(row["cancel_requested"])
            if not self.cancelled and row["status"] != Run.Status.RUNNING:
                raise self.lost()
        return self.cancelled


def checkpoint_record(run: Run, path: Path, epoch: int) -> None:
    """List a checkpoint file of the run once: the row of the same file written on another machine
    (another working directory, before the run was resumed here) is replaced, not doubled."""
    relative = run_file_relative(run=run, path=path)
    elsewhere = Checkpoint.objects.filter(run_id=run.id, path__endswith=f"/{relative}").exclude(
        path=str(path)
    )
    for other in elsewhere:
        with contextlib.suppress(LayerlabError):
            if run_file_relative(run=run, path=other.path) == relative:
                other.delete()
    Checkpoint.objects.update_or_create(run_id=run.id, path=str(path), defaults={"epoch": epoch})


class Heartbeat:
    """A thread that stamps ``heartbeat_at`` so other workers can tell this run's worker is alive."""

    def __init__(self, run_id: int, every: float, lease: int | None = None):
        self.run_id = run_id
        self.every = every
        self.lease = lease  # None: whatever the run's lease (``layerlab train``)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.loop, name=f"heartbeat-{run_id}", daemon=True)

    def loop(self) -> None:
        try:
            while not self.stopped.wait(self.every):
                beating = Run.objects.filter(id=self.run_id, status=Run.Status.RUNNING)
                if self.lease is not None:  # a lost run's heartbeat is its new owner's
                    beating = beating.filter(lease=self.lease)
                beating.update(heartbeat_at=timezone.now())
        finally:
            connection.close()  # the thread's own connection

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=5)


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
        if any(getattr(cb, "pruned", False) for cb in extra):
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
