"""Runs: create / execute (engine stubbed) / cancel / resume / fine-tune / recover, and the journal entry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from layerlab.apps.journal.models import Entry
from layerlab.apps.runs import execution
from layerlab.apps.runs.models import Checkpoint, MetricPoint, Run
from layerlab.apps.runs.recovery import runs_recover_orphans
from layerlab.apps.runs.services import run_cancel, run_create, run_finetune, run_resume
from layerlab.core.errors import DataError

pytestmark = pytest.mark.django_db(transaction=True)

TINY = {"model": {"preset": "mlp"}, "train": {"epochs": 3}}


def fake_engine(epochs=3, fail=None, stop_after=None):
    """A stand-in for train_experiment that drives the callbacks like the engine does."""
    calls = []

    def train(cfg, run_dir, *, resume, device, callbacks, cache_dir):
        calls.append({"resume": resume, "run_dir": Path(run_dir)})
        (cb,) = callbacks
        cb.on_run_start({"epochs": epochs})
        for epoch in range(1, epochs + 1):
            if fail and epoch == fail[0]:
                raise fail[1]
            cb.on_epoch_end(
                epoch, {"epoch": epoch, "train_loss": 1.0 / epoch, "val_accuracy": 0.5 + epoch / 10}
            )
            ckpt = Path(run_dir) / "checkpoints" / f"epoch-{epoch:04d}.ckpt"
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            ckpt.write_bytes(b"x")
            cb.on_checkpoint(ckpt, epoch)
            if stop_after and epoch == stop_after:
                Run.objects.update(cancel_requested=True)
                cb.last_poll = -1e9  # poll now
            if cb.should_stop():
                break
        summary = {"epochs": epoch, "test_accuracy": 0.9, "verdict": "fine", "odd": Path("/x")}
        cb.on_run_end(summary)
        return summary

    train.calls = calls
    return train


@pytest.fixture
def queued(people):
    return run_create(project=people["project"], user=people["owner"], config=TINY, name="r")


def test_run_executes_and_records_everything(queued, monkeypatch):
    monkeypatch.setattr(execution, "train_experiment", fake_engine())
    assert execution.run_execute(run_id=queued.id) == "succeeded"
    run = Run.objects.get(id=queued.id)
    assert (run.epoch, run.epochs, run.attempts, run.verdict) == (3, 3, 1, "fine")
    assert run.summary["odd"] == "/x"  # non-JSON values are stored as text
    assert MetricPoint.objects.filter(run=run, name="train_loss").count() == 3
    assert not MetricPoint.objects.filter(name="epoch").exists()
    assert Checkpoint.objects.filter(run=run).count() == 3
    entry = Entry.objects.get(run=run, automatic=True)
    assert "succeeded" in entry.title and "fine" in entry.body


def test_a_run_is_executed_once_even_if_its_job_runs_twice(queued, monkeypatch):
    engine = fake_engine()
    monkeypatch.setattr(execution, "train_experiment", engine)
    execution.run_execute(run_id=queued.id)
    assert execution.run_execute(run_id=queued.id) == "succeeded"
    assert len(engine.calls) == 1


def test_engine_error_fails_the_run_with_words(queued, monkeypatch):
    error = DataError("path '/nope' does not exist", where="data.path")
    monkeypatch.setattr(execution, "train_experiment", fake_engine(fail=(2, error)))
    assert execution.run_execute(run_id=queued.id) == "failed"
    run = Run.objects.get(id=queued.id)
    assert run.error == "data.path: path '/nope' does not exist"
    assert MetricPoint.objects.filter(run=run, name="train_loss").count() == 1


def test_unexpected_exception_fails_the_run_not_the_worker(queued, monkeypatch):
    monkeypatch.setattr(execution, "train_experiment", fake_engine(fail=(1, RuntimeError("boom"))))
    assert execution.run_execute(run_id=queued.id) == "failed"
    assert "RuntimeError: boom" in Run.objects.get(id=queued.id).error


def test_cancel_while_running_stops_after_the_step(queued, monkeypatch):
    monkeypatch.setattr(execution, "train_experiment", fake_engine(epochs=5, stop_after=2))
    assert execution.run_execute(run_id=queued.id) == "cancelled"
    assert Run.objects.get(id=queued.id).epoch == 2


def test_cancel_a_queued_run_means_it_never_starts(queued, monkeypatch):
    engine = fake_engine()
    monkeypatch.setattr(execution, "train_experiment", engine)
    run_cancel(run=queued)
    assert execution.run_execute(run_id=queued.id) == "cancelled"
    assert engine.calls == []


def test_resume_continues_from_checkpoints(queued, monkeypatch):
    monkeypatch.setattr(execution, "train_experiment", fake_engine(fail=(3, RuntimeError("x"))))
    execution.run_execute(run_id=queued.id)
    engine = fake_engine()
    monkeypatch.setattr(execution, "train_experiment", engine)
    run_resume(run=Run.objects.get(id=queued.id))
    assert execution.run_execute(run_id=queued.id) == "succeeded"
    assert engine.calls[0]["resume"] is True
    # Points of re-run epochs replace the stored ones: nothing duplicated.
    assert MetricPoint.objects.filter(run_id=queued.id, name="train_loss").count() == 3


def test_finetune_makes_a_child_run_from_the_parent_weights(queued, people, monkeypatch):
    monkeypatch.setattr(execution, "train_experiment", fake_engine())
    execution.run_execute(run_id=queued.id)
    parent = Run.objects.get(id=queued.id)
    child = run_finetune(run=parent, user=people["editor"], overrides=["train.lr=0.0001"])
    assert child.parent_id == parent.id and child.status == "queued"
    assert child.config["model"]["init_from"] == parent.run_dir
    assert child.config["train"]["lr"] == 0.0001


def test_recovery_requeues_a_run_whose_worker_died(queued):
    Run.objects.filter(id=queued.id).update(
        status="running",
        worker=f"{execution.socket.gethostname()}:999999",
        attempts=1,
        heartbeat_at=timezone.now(),
    )
    assert runs_recover_orphans() == [queued.id]
    assert Run.objects.get(id=queued.id).status == "queued"


def test_recovery_leaves_live_workers_alone(queued):
    Run.objects.filter(id=queued.id).update(
        status="running", worker=execution.worker_identity(), heartbeat_at=timezone.now()
    )
    assert runs_recover_orphans() == []


def test_recovery_gives_up_after_the_attempt_limit(queued, settings):
    settings.LAYERLAB_MAX_RUN_ATTEMPTS = 2
    Run.objects.filter(id=queued.id).update(
        status="running", worker="elsewhere:1", attempts=2, heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    assert runs_recover_orphans() == []
    run = Run.objects.get(id=queued.id)
    assert run.status == "failed" and "stopped 2 times" in run.error


def test_post_run_enqueues_a_job_by_id(people, client_for, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    from django_tasks import default_task_backend

    response = client_for(people["editor"]).post(
        "/api/runs/", {"project": people["project"].id, "config": TINY}, format="json"
    )
    assert response.status_code == 201 and response.json()["status"] == "queued"
    (job,) = default_task_backend.results
    assert job.args == [response.json()["id"]]


def test_recovery_watch_finds_orphans_while_running(queued):
    import time as clock

    from layerlab.apps.runs.recovery import RecoveryWatch

    Run.objects.filter(id=queued.id).update(
        status="running",
        worker="gone-machine:1",
        attempts=1,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    watch = RecoveryWatch(every=0.05).start()
    try:
        deadline = clock.monotonic() + 10
        while Run.objects.get(id=queued.id).status != "queued":
            assert clock.monotonic() < deadline
            clock.sleep(0.05)
    finally:
        watch.stopped.set()
        watch.thread.join(timeout=5)


def test_a_logged_run_cannot_be_fine_tuned(people):
    from layerlab.apps.runs.services import RunError, run_finish_external, run_start_external

    logged = run_finish_external(
        run=run_start_external(project=people["project"], user=people["owner"]), status="succeeded"
    )
    with pytest.raises(RunError, match="outside the lab"):
        run_finetune(run=logged, user=people["owner"])


def test_logged_runs_cancel_at_once_and_cannot_be_resumed(people):
    from layerlab.apps.runs.services import RunError, run_start_external

    logged = run_start_external(project=people["project"], user=people["owner"])
    assert run_cancel(run=logged).status == "cancelled"
    with pytest.raises(RunError, match="outside the lab"):
        run_resume(run=Run.objects.get(id=logged.id))


def test_runs_filter_on_summary_metric_thresholds(people, client_for):
    made = {}
    for name, accuracy, loss in (("good", 0.9, 0.2), ("poor", 0.3, 1.5)):
        run = run_create(project=people["project"], user=people["owner"], config=TINY, name=name)
        summary = {"test_accuracy": accuracy, "test_loss": loss}
        Run.objects.filter(id=run.id).update(status="succeeded", summary=summary)
        made[name] = run.id
    api = client_for(people["viewer"])

    def names(**query):
        response = api.get("/api/runs/", query)
        assert response.status_code == 200, response.content
        return sorted(item["name"] for item in response.json()["results"])

    assert names(min_test_accuracy="0.5") == ["good"]
    assert names(max_test_loss="1") == ["good"]
    assert names(min_test_accuracy="0.1", search="oo", ordering="-created_at") == ["good", "poor"]
    assert api.get("/api/runs/", {"min_test_accuracy": "inf"}).status_code == 400
