"""Probe trials whose job's worker died: their job is queued again (the runs app's recovery calls this).

A probe's run is not trained by a worker (origin ``client``), so the runs app's own recovery, which
re-queues training runs, passes it by. The probe's job stamps its worker on the run and heartbeats it
(``probes.experiment_probe_execute``); here a probe run whose worker is gone (its process, or its
heartbeat) is released and its job queued again, at most ``LAYERLAB_MAX_RUN_ATTEMPTS`` times, then the
run fails, which advances the experiment (its dependants are skipped; resuming it tries again).
A probe whose job no worker has taken yet (no worker stamped) is waiting in the queue, not lost.
"""

from __future__ import annotations

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
    return requeued


def _release(mine, trial_id: int) -> bool:
    """Free the probe's run for a new job (one more attempt) and queue that job after commit."""
    from layerlab.apps.experiments.tasks import experiment_probe_task

    with transaction.atomic():
        if not mine.update(worker="", attempts=F("attempts") + 1, heartbeat_at=timezone.now()):
            return False
        transaction.on_commit(lambda: experiment_probe_task.enqueue(trial_id))
    return True
