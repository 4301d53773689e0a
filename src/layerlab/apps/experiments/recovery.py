"""Probe trials whose job's worker died: their job is queued again (the runs app's recovery calls this).

A probe's run is not trained by a worker (origin ``client``), so the runs app's own recovery, which
re-queues training runs, passes it by. The probe's job stamps its worker on the run and heartbeats it
(``probes.experiment_probe_execute``); here a probe run whose worker is gone (its process, or its
heartbeat) is released and its job queued again, at most ``LAYERLAB_MAX_RUN_ATTEMPTS`` times, then the
run fails, which advances the experiment (its dependants are skipped; resuming it tries again).

A probe no job has claimed yet (no worker stamped) is waiting in the queue, unless its job is gone:
the enqueue after the commit never happened, or a worker took the job and died before claiming the
run (a live job claims it within moments of starting). With the database task backend, such a probe
unclaimed for ``LAYERLAB_STALE_SECONDS`` with no job ready for it, nor one running that started since,
gets a new job (an attempt like the others).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from layerlab.apps.experiments.models import ExperimentTrial
from layerlab.apps.experiments.probes import probe_close
from layerlab.apps.runs.execution import worker_host
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.recovery import worker_dead


def probes_recover_orphans() -> list[int]:
    """Queue again the jobs of probe trials whose worker died; the ids of their runs.

    Safe with many workers recovering at once: a run is released by one conditional update (its
    worker and lease unchanged), so only one of them queues the job.
    """
    host = worker_host()
    stale_before = timezone.now() - timedelta(seconds=settings.LAYERLAB_STALE_SECONDS)
    limit = settings.LAYERLAB_MAX_RUN_ATTEMPTS
    rows = (
        ExperimentTrial.objects.filter(
            status=ExperimentTrial.Status.RUNNING,
            run__status=Run.Status.RUNNING,
            run__origin=Run.Origin.CLIENT,
        )
        .exclude(probe="")
        .exclude(run__worker="")
        .select_related("run")
    )
    requeued = []
    for row in rows:
        run = row.run
        if not worker_dead(run, host=host, stale_before=stale_before):
            continue
        mine = Run.objects.filter(id=run.id, status=Run.Status.RUNNING, worker=run.worker, lease=run.lease)
        if run.attempts >= limit:
            error = (
                f"the worker running this probe stopped {run.attempts} times (last: {run.worker}); "
                "resume the experiment to try again"
            )
            probe_close(run, Run.Status.FAILED, {}, error, mine)
        elif _release(mine, row.id):
            requeued.append(run.id)
    return requeued + _requeue_jobless(stale_before, limit)


def _requeue_jobless(stale_before, limit: int) -> list[int]:
    """Queue a new job for each unclaimed probe whose job is gone (database task backend only)."""
    if settings.TASKS["default"]["BACKEND"] != "django_tasks_db.DatabaseBackend":
        return []  # another backend's queue cannot be read here
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from layerlab.apps.experiments.tasks import experiment_probe_task

    rows = (
        ExperimentTrial.objects.filter(
            status=ExperimentTrial.Status.RUNNING,
            run__status=Run.Status.RUNNING,
            run__origin=Run.Origin.CLIENT,
            run__worker="",
        )
        .exclude(probe="")
        .select_related("run")
    )
    unclaimed = [row for row in rows if (row.run.heartbeat_at or row.run.created_at) < stale_before]
    if not unclaimed:
        return []
    waiting = set()
    jobs = DBTaskResult.objects.filter(
        task_path=experiment_probe_task.module_path,
        status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING],
    ).values_list("args_kwargs", "status", "started_at")
    for args_kwargs, status, started in jobs:
        if status == TaskResultStatus.RUNNING and started is not None and started < stale_before:
            continue  # taken long ago and its run never claimed: its worker died
        with contextlib.suppress(LookupError, TypeError, ValueError):
            waiting.add(int(args_kwargs["args"][0]))
    requeued = []
    for row in unclaimed:
        if row.id in waiting:
            continue
        run = row.run
        mine = Run.objects.filter(id=run.id, status=Run.Status.RUNNING, worker="", lease=run.lease)
        if run.attempts >= limit:
            error = (
                f"the job of this probe was lost {run.attempts} times before a worker took it; "
                "resume the experiment to try again"
            )
            probe_close(run, Run.Status.FAILED, {}, error, mine)
        elif _release(mine, row.id):
            requeued.append(run.id)
    return requeued


def _release(mine, trial_id: int) -> bool:
    """Free the probe's run for a new job (one more attempt) and queue that job after commit."""
    from layerlab.apps.experiments.tasks import experiment_probe_task

    with transaction.atomic():
        if not mine.update(worker="", attempts=F("attempts") + 1, heartbeat_at=timezone.now()):
            return False
        transaction.on_commit(lambda: experiment_probe_task.enqueue(trial_id))
    return True
