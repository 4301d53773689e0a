"""Runs whose worker died (SIGKILL, lost machine, paused): re-queue them to resume from their last checkpoint.

A worker taken for dead may still be alive (stopped, cut off from the database): the next claim
gives the run a new lease, and the old execution's writes, all fenced by its lease, stop matching.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from layerlab.apps.runs.execution import worker_host
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.services import run_enqueue_on_commit, run_finished

log = logging.getLogger("layerlab.runs")

# Recoveries of work other apps run on the workers (apps/experiments: probe jobs), registered by their
# AppConfig.ready() so this app never imports them; each returns the ids of the runs it re-queued.
recovery_hooks: list[Callable[[], list[int]]] = []


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_dead(run: Run, *, host: str, stale_before) -> bool:
    """A local worker whose process is gone, or any worker whose heartbeat stopped."""
    worker_host, _, pid = run.worker.rpartition(":")
    if worker_host == host and pid.isdigit() and not pid_alive(int(pid)):
        return True
    return run.heartbeat_at is None or run.heartbeat_at < stale_before


def runs_recover_orphans() -> list[int]:
    """Re-queue running runs whose worker died (at most ``LAYERLAB_MAX_RUN_ATTEMPTS`` executions, then fail).

    Safe with many workers recovering at once: each run moves out of ``running`` by one
    conditional update, so only one of them re-queues it. Returns the re-queued run ids.
    """
    host = worker_host()  # LAYERLAB_WORKER_NAME, else the host name
    stale_before = timezone.now() - timedelta(seconds=settings.LAYERLAB_STALE_SECONDS)
    limit = settings.LAYERLAB_MAX_RUN_ATTEMPTS
    requeued = []
    for run in Run.objects.filter(status=Run.Status.RUNNING, origin=Run.Origin.SERVER):
        if not worker_dead(run, host=host, stale_before=stale_before):
            continue
        # The lease too: a run claimed again meanwhile (a new lease) is not this orphan any more.
        mine = Run.objects.filter(id=run.id, status=Run.Status.RUNNING, worker=run.worker, lease=run.lease)
        with transaction.atomic():
            if run.attempts >= limit:
                error = (
                    f"the worker executing this run stopped {run.attempts} times (last: {run.worker}); "
                    "resume it to try again"
                )
                if mine.update(status=Run.Status.FAILED, error=error, finished_at=timezone.now()):
                    run_finished(Run.objects.get(id=run.id))
            elif mine.update(status=Run.Status.QUEUED, worker=""):
                run_enqueue_on_commit(run.id)
                requeued.append(run.id)
    for hook in list(recovery_hooks):
        try:
            requeued += hook()
        except Exception:  # one app's recovery failing leaves the others (and the runs') done
            log.exception("recovery hook %s failed", getattr(hook, "__name__", hook))
    return requeued


class RecoveryWatch:
    """A daemon thread that looks for orphaned runs every ``every`` seconds (machines that never
    come back are noticed by the workers still alive, not only by a worker starting)."""

    def __init__(self, every: float):
        self.every = every
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="run-recovery", daemon=True)

    def loop(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                requeued = runs_recover_orphans()
                if requeued:
                    log.warning("re-queued runs whose worker died: %s", requeued)
            except Exception:  # the watch must outlive a database hiccup
                log.exception("run recovery failed; trying again in %s s", self.every)
            finally:
                close_old_connections()

    def start(self) -> RecoveryWatch:
        self.thread.start()
        return self
