"""Probe trials in the lab: the django-tasks job that runs one (``tasks.experiment_probe_task``) and closes its run.

A probe trial is a run without checkpoints (origin ``client``); its job claims the run as a worker claims
a training run (its ``worker``, a new lease) and heartbeats it, so the workers' recovery
(``recovery.py``) notices a job whose worker died.
"""

from __future__ import annotations

import contextlib
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from layerlab.apps.experiments.models import Experiment, ExperimentTrial
from layerlab.apps.experiments.services import experiment_spec, experiment_state
from layerlab.apps.runs.execution import json_safe, worker_identity
from layerlab.apps.runs.files import run_dir_restore, run_file_publish
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.recorder import Heartbeat
from layerlab.apps.runs.services import RunError, run_dir_for, run_finish_external
from layerlab.core import runlayout
from layerlab.core.errors import LayerlabError
from layerlab.research.base import Trial, TrialResult
from layerlab.research.driver import plan

log = logging.getLogger("layerlab.experiments")


def experiment_probe_execute(*, trial_id: int) -> str:
    """Run a probe trial (the worker's job): its inputs' run files fetched here, the probe's metrics
    written as the run's summary (summary.json, published to the storage); the run finishes, which
    advances the experiment. Returns the run's status.

    The job claims the probe's run as a worker claims a training run (its ``worker``, a new lease) and
    heartbeats it while the probe works, so a worker that dies mid-probe is noticed by the workers'
    recovery (``apps/experiments/recovery.py``), which queues the job again. A job for a run another
    job holds does nothing; a job that lost its run (taken over) finishes nothing.
    """
    from layerlab.research.local import execute_trial

    row = ExperimentTrial.objects.select_related("experiment", "run").get(id=trial_id)
    experiment, run = row.experiment, row.run
    if run is None or run.status != Run.Status.RUNNING:
        return run.status if run is not None else "missing"
    if not experiment.is_running:
        return probe_close(run, Run.Status.CANCELLED, {}, "the experiment was cancelled")
    lease = probe_claim(run.id)
    if lease is None:
        return run.status  # another job holds it
    owned = Run.objects.filter(id=run.id, lease=lease)
    with Heartbeat(run.id, settings.LAYERLAB_HEARTBEAT_SECONDS, lease=lease):
        try:
            trial, inputs = _probe_inputs(experiment, row)
        except (LayerlabError, KeyError, Run.DoesNotExist) as exc:
            return probe_close(run, Run.Status.FAILED, {}, f"the probe's inputs are missing: {exc}", owned)
        run_dir = run_dir_for(run)
        result = execute_trial(trial, {}, run_dir, inputs, resume=False)
        if (run_dir / runlayout.SUMMARY).is_file() and owned.exists():
            run_file_publish(run=run, path=run_dir / runlayout.SUMMARY)
    status = Run.Status.SUCCEEDED if result.ok else Run.Status.FAILED
    return probe_close(run, status, result.summary, str(result.summary.get("error") or ""), owned)


def probe_claim(run_id: int) -> int | None:
    """Stamp this worker on a probe's run under a new lease; None when another job holds it."""
    claimed = Run.objects.filter(id=run_id, status=Run.Status.RUNNING, worker="").update(
        worker=worker_identity(), heartbeat_at=timezone.now(), started_at=timezone.now(), lease=F("lease") + 1
    )
    if not claimed:
        return None
    return Run.objects.filter(id=run_id).values_list("lease", flat=True).get()


def _probe_inputs(experiment: Experiment, row: ExperimentTrial) -> tuple[Trial, dict[str, TrialResult]]:
    """The probe's trial as planned now and its needed trials' results, their run files fetched here."""
    spec = experiment_spec(experiment)
    _rows, results, _active = experiment_state(experiment)
    trial = plan(spec, results)[row.key]
    inputs = {}
    for key in trial.needs:
        needed = results[key]
        run_dir_restore(run=Run.objects.get(id=int(needed.run_id)))
        inputs[key] = needed
    return trial, inputs


def probe_close(run: Run, status: str, summary: dict, error: str, owned=None) -> str:
    """Finish a probe's run (its experiment advances); ``owned``: a query the run must still match (the
    job's lease), else a successor holds it and nothing is written. Returns ``status`` or ``lost``."""
    with transaction.atomic():
        if owned is not None and not owned.select_for_update().filter(status=Run.Status.RUNNING).exists():
            log.warning("probe run %s was taken over or closed meanwhile; its result is dropped", run.id)
            return "lost"
        with contextlib.suppress(RunError):  # cancelled meanwhile: the cancel stands
            run_finish_external(run=run, status=status, summary=json_safe(summary), error=error)
    return status
