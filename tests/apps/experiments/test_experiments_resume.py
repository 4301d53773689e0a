"""Resuming a cancelled lab experiment (completed trials kept, the others run again, through the workers' path),
and the workers' recovery of a probe trial whose job's worker died."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_tasks.signals import task_enqueued

from layerlab.apps.experiments.models import Experiment, ExperimentTrial
from layerlab.apps.experiments.probes import experiment_probe_execute, probe_claim
from layerlab.apps.experiments.services import (
    ExperimentError,
    experiment_cancel,
    experiment_create,
    experiment_resume,
)
from layerlab.apps.runs import execution
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.recovery import runs_recover_orphans
from layerlab.apps.runs.services import run_finished
from layerlab.research.base import ExperimentKind, Report, Trial, register_kind
from layerlab.research.probes import register_probe

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG = {
    "name": "tiny",
    "data": {
        "source": "spiral",
        "classes": 3,
        "points_per_class": 15,
        "split": {"method": "random", "val": 0.2, "test": 0.2},
    },
    "model": {"preset": "mlp", "options": {"hidden": [6]}},
    "train": {"epochs": 2, "batch_size": 32, "num_threads": 1},
    "experiment": {"kind": "seeds", "seeds": [0, 1, 2]},
}


def config(**experiment):
    data = copy.deepcopy(CONFIG)
    data["experiment"].update(experiment)
    return data


def execute_next(experiment: Experiment) -> int | None:
    """Execute the oldest queued trial run as a worker does (the finished-run hook advances the experiment)."""
    run = (
        Run.objects.filter(experiment_trial__experiment=experiment, status=Run.Status.QUEUED)
        .order_by("id")
        .first()
    )
    if run is None:
        return None
    execution.run_execute(run_id=run.id)
    return run.id


def drain(experiment: Experiment) -> list[int]:
    done = []
    while (run_id := execute_next(experiment)) is not None:
        done.append(run_id)
    return done


def trial_runs(experiment: Experiment) -> dict[str, tuple[int | None, str]]:
    rows = ExperimentTrial.objects.filter(experiment=experiment).select_related("run")
    return {r.key: (r.run_id, r.status) for r in rows}


def test_a_cancelled_experiment_resumes_and_redoes_only_unfinished_trials(people, client_for):
    experiment = experiment_create(project=people["project"], user=people["owner"], config=config())
    first = execute_next(experiment)
    experiment_cancel(experiment=experiment)
    before = trial_runs(experiment)
    assert before["seed=0"] == (first, "completed")
    assert {before[k][1] for k in ("seed=1", "seed=2")} == {"cancelled"}
    done_summary = Run.objects.get(id=first).summary

    editor, viewer, stranger = (client_for(people[n]) for n in ("editor", "viewer", "stranger"))
    path = f"/api/experiments/{experiment.id}/resume/"
    assert stranger.post(path).status_code == 404
    assert viewer.post(path).status_code == 403
    answer = editor.post(path)
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "running"
    assert {t["key"]: t["status"] for t in answer.json()["trials"]} == {
        "seed=0": "completed",
        "seed=1": "running",
        "seed=2": "running",
    }
    # The cancelled trials continue as the same runs (their checkpoints, their run:<id>), queued again.
    assert trial_runs(experiment)["seed=1"][0] == before["seed=1"][0]
    assert Run.objects.get(id=before["seed=1"][0]).status == Run.Status.QUEUED

    executed = drain(experiment)
    assert sorted(executed) == sorted([before["seed=1"][0], before["seed=2"][0]])  # seed=0 not redone
    assert Run.objects.get(id=first).summary == done_summary
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED and experiment.error == ""
    assert [row["seed"] for row in experiment.report["rows"]] == [0, 1, 2]
    assert {s for _run, s in trial_runs(experiment).values()} == {"completed"}
    again = editor.post(path)
    assert again.status_code == 400
    assert again.json()["detail"] == (
        f"experiment {experiment.id} is finished; only cancelled or failed experiments can be resumed"
    )


def test_resume_waits_for_trial_runs_still_stopping(people):
    experiment = experiment_create(project=people["project"], user=people["owner"], config=config(seeds=[0]))
    run = Run.objects.get(experiment_trial__experiment=experiment)
    execution.run_claim(run.id)  # a worker is training it: cancelling only asks it to stop
    experiment_cancel(experiment=experiment)
    assert Run.objects.get(id=run.id).status == Run.Status.RUNNING
    with pytest.raises(ExperimentError, match="still has 1 trial run\\(s\\) stopping"):
        experiment_resume(experiment=experiment)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.CANCELLED
    with transaction.atomic():  # the worker stops it at its next step
        Run.objects.filter(id=run.id).update(status=Run.Status.CANCELLED, finished_at=timezone.now())
        run_finished(Run.objects.get(id=run.id))
    assert ExperimentTrial.objects.get(run=run).status == ExperimentTrial.Status.CANCELLED
    assert experiment_resume(experiment=experiment).status == Experiment.Status.RUNNING
    assert drain(experiment) == [run.id]
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED


def test_a_failed_experiment_resumes_keeping_the_trials_still_queued(people):
    experiment = experiment_create(
        project=people["project"], user=people["owner"], config=config(seeds=[0, 1])
    )
    queued = trial_runs(experiment)
    Experiment.objects.filter(id=experiment.id).update(status=Experiment.Status.FAILED, error="a lost step")
    first = execute_next(experiment)  # finishing while the experiment is failed: its trial row follows
    assert trial_runs(experiment)["seed=0"] == (first, "completed")
    resumed = experiment_resume(experiment=experiment)
    assert resumed.status == Experiment.Status.RUNNING and resumed.error == ""
    assert trial_runs(experiment)["seed=1"] == queued["seed=1"]  # the same run, still queued
    assert drain(experiment) == [queued["seed=1"][0]]
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED


@dataclass
class ProbedOptions:
    value: int = 3


@register_kind
class ResumeProbed(ExperimentKind):
    """A test kind: one training trial, then a probe reading its run directory."""

    name = "test_resume_probed"
    Options = ProbedOptions

    def plan(self, base, options, done):
        return [
            Trial("train", dict(base), labels={"what": "train"}),
            Trial(
                "probe", {}, needs=("train",), probe="test_resume_value", probe_args={"value": options.value}
            ),
        ]

    def report(self, base, options, results):
        rows = [{"key": k, "status": r.status, "value": r.summary.get("value")} for k, r in results.items()]
        return Report(title="probed", columns=["key", "status", "value"], rows=rows, findings=["probed"])


@register_probe("test_resume_value")
def value_probe(args, inputs, run_dir, seed):
    return {"value": args["value"]}


def test_a_cancelled_probe_is_planned_again_with_a_new_run(people, client_for):
    data = config()
    data["experiment"] = {"kind": "test_resume_probed", "value": 4}
    experiment = experiment_create(project=people["project"], user=people["owner"], config=data)
    drain(experiment)  # the training trial; its finish starts the probe (a run and a queued job)
    experiment_cancel(experiment=experiment)
    old_probe = ExperimentTrial.objects.get(experiment=experiment, key="probe").run_id
    assert Run.objects.get(id=old_probe).status == Run.Status.CANCELLED

    resumed = experiment_resume(experiment=experiment)
    assert resumed.status == Experiment.Status.RUNNING
    probe = ExperimentTrial.objects.get(experiment=experiment, key="probe")
    assert probe.status == ExperimentTrial.Status.RUNNING and probe.run_id != old_probe
    assert experiment_probe_execute(trial_id=probe.id) == Run.Status.SUCCEEDED
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED
    assert {r["key"]: r["value"] for r in experiment.report["rows"]}["probe"] == 4


def test_a_cli_experiment_is_resumed_by_rerunning_its_command(people):
    experiment = Experiment.objects.create(
        project=people["project"],
        kind="seeds",
        origin=Experiment.Origin.CLI,
        status=Experiment.Status.CANCELLED,
    )
    with pytest.raises(ExperimentError, match="rerun that command with the same config and --out"):
        experiment_resume(experiment=experiment)


@pytest.fixture
def probe_jobs():
    """The trial ids of the probe jobs queued while the test runs."""
    queued: list[int] = []

    def heard(sender, task_result, **kwargs):
        if task_result.task.name == "experiment_probe_task":
            queued.append(task_result.args[0])

    task_enqueued.connect(heard)
    yield queued
    task_enqueued.disconnect(heard)


def probe_started(people, probe_jobs) -> ExperimentTrial:
    """An experiment whose training trial finished; its probe's job was queued (and is taken by no one yet)."""
    data = config()
    data["experiment"] = {"kind": "test_resume_probed", "value": 6}
    experiment = experiment_create(project=people["project"], user=people["owner"], config=data)
    drain(experiment)
    probe = ExperimentTrial.objects.get(experiment=experiment, key="probe")
    assert probe_jobs == [probe.id]
    return probe


def worker_died(run_id: int) -> None:
    """A job took the probe's run on another machine, which then stopped beating."""
    assert probe_claim(run_id) is not None
    Run.objects.filter(id=run_id).update(
        worker="gone-host:4242", heartbeat_at=timezone.now() - timedelta(hours=1)
    )


def test_the_workers_recovery_queues_again_a_probe_whose_worker_died(people, probe_jobs):
    probe = probe_started(people, probe_jobs)
    assert probe.run_id not in runs_recover_orphans()  # its job waits in the queue: not lost
    worker_died(probe.run_id)
    assert runs_recover_orphans() == [probe.run_id]  # the probes' hook, run by the workers' recovery
    run = Run.objects.get(id=probe.run_id)
    assert run.status == Run.Status.RUNNING and run.worker == "" and run.attempts == 2
    assert probe_jobs == [probe.id, probe.id]
    assert runs_recover_orphans() == []  # released once
    assert experiment_probe_execute(trial_id=probe.id) == Run.Status.SUCCEEDED  # the new job
    assert experiment_probe_execute(trial_id=probe.id) == Run.Status.SUCCEEDED  # a duplicate does nothing
    probe.experiment.refresh_from_db()
    assert probe.experiment.status == Experiment.Status.FINISHED
    assert {r["key"]: r["value"] for r in probe.experiment.report["rows"]}["probe"] == 6


def test_a_probe_whose_worker_keeps_dying_fails_and_the_experiment_goes_on(people, probe_jobs, settings):
    probe = probe_started(people, probe_jobs)
    Run.objects.filter(id=probe.run_id).update(attempts=settings.LAYERLAB_MAX_RUN_ATTEMPTS)
    worker_died(probe.run_id)
    assert runs_recover_orphans() == []
    run = Run.objects.get(id=probe.run_id)
    assert run.status == Run.Status.FAILED
    assert run.error.startswith("the worker running this probe stopped 3 times (last: gone-host:4242)")
    probe.refresh_from_db()
    assert probe.status == ExperimentTrial.Status.FAILED
    probe.experiment.refresh_from_db()
    assert probe.experiment.status == Experiment.Status.FINISHED  # every trial finished: the report
    assert {r["key"]: r["status"] for r in probe.experiment.report["rows"]}["probe"] == "failed"


def test_a_probe_job_that_lost_its_run_finishes_nothing(people, probe_jobs):
    from layerlab.apps.experiments.probes import probe_close

    probe = probe_started(people, probe_jobs)
    lease = probe_claim(probe.run_id)
    Run.objects.filter(id=probe.run_id).update(lease=lease + 1)  # taken over by a successor
    owned = Run.objects.filter(id=probe.run_id, lease=lease)
    assert probe_close(probe.run, Run.Status.SUCCEEDED, {"value": 1}, "", owned) == "lost"
    assert Run.objects.get(id=probe.run_id).status == Run.Status.RUNNING


def test_a_probe_whose_job_was_lost_before_any_worker_took_it_gets_a_new_one(people, probe_jobs, settings):
    """The enqueue after the commit never reached the queue, or a worker took the job and died before
    claiming the run: the workers' recovery sees no job for the unclaimed probe and queues one."""
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from layerlab.apps.experiments.tasks import experiment_probe_task

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
    probe = probe_started(people, probe_jobs)  # its job is a READY row of the database queue now
    jobs = DBTaskResult.objects.filter(task_path=experiment_probe_task.module_path)
    assert jobs.filter(status=TaskResultStatus.READY).count() == 1
    long_ago = timezone.now() - timedelta(hours=1)
    Run.objects.filter(id=probe.run_id).update(created_at=long_ago, heartbeat_at=None)
    assert runs_recover_orphans() == []  # unclaimed for an hour, but its job waits in the queue

    # taken by a worker that died at once: running since long ago, the run never claimed
    jobs.update(status=TaskResultStatus.RUNNING, started_at=long_ago)
    assert runs_recover_orphans() == [probe.run_id]
    run = Run.objects.get(id=probe.run_id)
    assert run.status == Run.Status.RUNNING and run.worker == "" and run.attempts == 2
    assert probe_jobs == [probe.id, probe.id]
    assert runs_recover_orphans() == []  # the new job is queued (and the run was stamped just now)

    jobs.delete()  # the new job lost too, and a stale window later
    Run.objects.filter(id=probe.run_id).update(heartbeat_at=long_ago)
    assert runs_recover_orphans() == [probe.run_id]
    assert experiment_probe_execute(trial_id=probe.id) == Run.Status.SUCCEEDED
    probe.experiment.refresh_from_db()
    assert probe.experiment.status == Experiment.Status.FINISHED
