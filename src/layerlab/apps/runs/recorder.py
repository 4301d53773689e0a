"""Recording one execution of a run: progress, per-epoch metrics (a background writer thread) and
checkpoints written to the database under the execution's lease, and the heartbeat that shows it alive."""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from layerlab.apps.runs.files import (
    run_checkpoints_prune,
    run_file_publish,
    run_file_relative,
    run_files_publish,
)
from layerlab.apps.runs.metrics import metric_rows_upsert
from layerlab.apps.runs.models import Checkpoint, Run
from layerlab.core.errors import LayerlabError
from layerlab.core.runlayout import KIND_LAST, KIND_NUMBERED, METRICS, START_FILES
from layerlab.train.callbacks import Callback
from layerlab.train.rundir import read_metrics

log = logging.getLogger("layerlab.runs")

# How often (seconds) a running job checks whether its run was cancelled.
CANCEL_POLL_SECONDS = 0.5


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
    file the engine writes (checkpoints, the summary) and by ``close``. A local run's checkpoints
    are the exception: their rows are queued behind the epochs (see ``checkpoints_wait``).

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
        self.pending_checkpoints: dict[Path, int] = {}  # a local run's checkpoint rows, likewise
        self.recorded_paths: set[Path] = set()  # checkpoint files this execution listed
        self.handed_at = 0.0
        self.cancelled = False
        # LAYERLAB_MAX_RUN_SECONDS for a worker's execution (0: no limit, as for `layerlab train`)
        self.deadline = time.monotonic() + max_seconds if max_seconds > 0 else None
        self.max_seconds = max_seconds
        self.timed_out = False
        self.group_pruned = False  # a torchrun group's rank 0 was stopped by a sweep pruner (runs.group)
        self.last_poll = 0.0
        self._run: Run | None = None
        # A committed fencing stamp makes the run ours for a while (see ``check``): a tenth of the
        # time recovery waits, at most a second, so clocks of two hosts may differ by most of it.
        self.trust_seconds = min(1.0, settings.LAYERLAB_STALE_SECONDS / 10)
        self.confirmed_at = -math.inf

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
        """Raise ``RunLeaseLost`` unless this execution still owns the run; it runs before every file
        the engine writes, each epoch's metrics row included.

        The check is a fencing update that stamps ``heartbeat_at``, so for ``trust_seconds`` after it
        no other worker can take the run over (recovery waits ``LAYERLAB_STALE_SECONDS`` past the last
        stamp) and a check within that window needs no query. The window is timed on
        ``CLOCK_BOOTTIME``, which keeps counting while the process is stopped (SIGSTOP) or the machine
        sleeps: a worker paused past the window queries again when it wakes, and finds the run lost.
        """
        if boot_clock() - self.confirmed_at < self.trust_seconds:
            return
        started = boot_clock()  # the stamp is at least this recent
        quote = connection.ops.quote_name
        sql = (
            f"UPDATE {quote(Run._meta.db_table)} SET {quote('heartbeat_at')} = %s WHERE {quote('id')} = %s "
            f"AND {quote('lease')} = %s AND {quote('status')} = %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [timezone.now(), self.run_id, self.lease, Run.Status.RUNNING])
            if cursor.rowcount != 1:
                raise self.lost()
        if not connection.in_atomic_block:  # committed: a stamp inside a transaction could roll back
            self.confirmed_at = started

    def hand_over(self) -> None:
        """Give the epochs (and a local run's checkpoint rows) buffered so far to the writer, as one write."""
        if self.pending or self.pending_checkpoints:
            batch, self.pending = self.pending, []
            checkpoints, self.pending_checkpoints = self.pending_checkpoints, {}
            self.writer.put(lambda: self.store_epochs(batch, checkpoints))
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

    @property
    def checkpoints_wait(self) -> bool:
        """Whether a checkpoint waits until the database has it and every point before it.

        A published run's checkpoint does (another machine resumes from the rows listed there). A
        local run's (``layerlab train``) is buffered with its epochs and written with them, in one
        transaction, on the writer thread: it resumes from its own directory, and a resume catches
        the database up from the directory's ``metrics.jsonl`` (``on_run_start``), so a crash costs
        the database nothing the checkpoint holds, and the training thread never waits for a commit.
        """
        return self.publish or self.writer is None

    def on_before_write(self, trainer, what: str) -> None:
        if what == "checkpoint" and not self.checkpoints_wait:
            self.writer.check()  # its row goes with the epochs before it (``on_checkpoint``)
        elif what != "metrics":  # a checkpoint or the summary: the database has every point before it
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
        if info.get("resumed") and info.get("run_dir"):
            self.catch_up(Path(info["run_dir"]))

    def catch_up(self, run_dir: Path) -> None:
        """Record every epoch of the resumed directory's ``metrics.jsonl`` (up to its checkpoint):
        points a crash kept from the database before are in it (re-sent steps replace, never double)."""
        batch = [(int(row["epoch"]), row) for row in read_metrics(run_dir)]
        if batch:  # in this thread, once per resume, before the writer has anything to write
            self.store_epochs(batch)

    def store_epochs(self, batch: list[tuple[int, dict]], checkpoints: dict[Path, int] | None = None) -> None:
        """Epochs' metrics, the last one's progress (and checkpoint rows), in one transaction."""
        with transaction.atomic():  # the fence first: a lost run gets none of these points
            self.fence(**({"epoch": batch[-1][0]} if batch else {}))
            metric_rows_upsert(
                self.run_id, [r for epoch, metrics in batch for r in metric_rows_of(epoch, metrics)]
            )
            for path, epoch in (checkpoints or {}).items():
                self.record_checkpoint(path, epoch)

    def store_checkpoint(self, path: Path, epoch: int) -> None:
        """List one checkpoint file of the run, fenced."""
        with transaction.atomic():
            self.fence()
            self.record_checkpoint(path, epoch)

    def record_checkpoint(self, path: Path, epoch: int) -> None:
        """``checkpoint_record``, tidying the rows of other machines at a path's first checkpoint only."""
        checkpoint_record(self.run, path, epoch, tidy=path not in self.recorded_paths)
        self.recorded_paths.add(path)

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
        if not self.checkpoints_wait:  # written with the epochs before it, at the next hand-over
            self.pending_checkpoints[path] = epoch
            return
        self.flush()
        if self.publish:  # stored before it is listed, so a listed checkpoint can always be read
            self.check()
            if kind == KIND_LAST:  # the epochs so far, so a resume on another machine keeps them
                run_file_publish(run=self.run, path=METRICS)
            run_file_publish(run=self.run, path=path)
        self.store_checkpoint(path, epoch)
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


def boot_clock() -> float:
    """Seconds on a clock that also runs while the process is stopped or the machine suspended."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def checkpoint_record(run: Run, path: Path, epoch: int, *, tidy: bool = True) -> None:
    """List a checkpoint file of the run once: the row of the same file written on another machine
    (another working directory, before the run was resumed here) is replaced, not doubled (``tidy``:
    a recorder looks for those rows at a path's first checkpoint only; later ones are its own)."""
    if tidy:
        relative = run_file_relative(run=run, path=path)
        elsewhere = Checkpoint.objects.filter(run_id=run.id, path__endswith=f"/{relative}").exclude(
            path=str(path)
        )
        for other in elsewhere:
            with contextlib.suppress(LayerlabError):
                if run_file_relative(run=run, path=other.path) == relative:
                    other.delete()
    Checkpoint.objects.bulk_create(  # one upsert on (run, path)
        [Checkpoint(run_id=run.id, path=str(path), epoch=epoch)],
        update_conflicts=True,
        unique_fields=["run", "path"],
        update_fields=["epoch", "created_at"],
    )


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
