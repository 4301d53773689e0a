"""Runs whose worker died (SIGKILL, lost machine): re-queue them to resume from their last checkpoint."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from layerlab.apps.runs.models import Run
from layerlab.apps.runs.services import run_enqueue_on_commit, run_finished


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
    host = socket.gethostname()
    stale_before = timezone.now() - timedelta(seconds=settings.LAYERLAB_STALE_SECONDS)
    limit = settings.LAYERLAB_MAX_RUN_ATTEMPTS
    requeued = []
    for run in Run.objects.filter(status=Run.Status.RUNNING, origin=Run.Origin.SERVER):
        if not worker_dead(run, host=host, stale_before=stale_before):
            continue
        mine = Run.objects.filter(id=run.id, status=Run.Status.RUNNING, worker=run.worker)
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
    return requeued
