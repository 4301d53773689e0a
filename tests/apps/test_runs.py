"""Runs: create / execute (engine stubbed) / cancel / resume / fine-tune / recover, and the journal entry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from layerlab.apps.journal.models import Entry
from layerlab.apps.runs import execution
from layerlab.apps.runs import recorder as recording
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
        cb.on_run_start(None, {"epochs": epochs})
        for epoch in range(1, epochs + 1):
            if fail and epoch == fail[0]:
                raise fail[1]
            cb.on_epoch_end(
                None, epoch, {"epoch": epoch, "train_loss": 1.0 / epoch, "val_accuracy": 0.5 + epoch / 10}
            )
            ckpt = Path(run_dir) / "checkpoints" / f"epoch-{epoch:04d}.ckpt"
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            ckpt.write_bytes(b"x")
            cb.on_checkpoint(None, ckpt, epoch, "numbered")
            if stop_after and epoch == stop_after:
                Run.objects.update(cancel_requested=True)
                cb.last_poll = -1e9  # poll now
            if cb.should_stop():
                break
        summary = {"epochs": epoch, "test_accuracy": 0.9, "verdict": "fine", "odd": Path("/x")}
        cb.on_run_end(None, summary)
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
    assert run.error == "data.path: path 'nope' does not exist"  # words kept, no server path
    assert MetricPoint.objects.filter(run=run, name="train_loss").count() == 1


def test_unexpected_exception_fails_the_run_not_the_worker(queued, monkeypatch):
    monkeypatch.setattr(execution, "train_experiment", fake_engine(fail=(1, RuntimeError("boom"))))
    assert execution.run_execute(run_id=queued.id) == "failed"
    error = Run.objects.get(id=queued.id).error
    assert "internal error: RuntimeError" in error and "boom" not in error  # the message may quote a file


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
    assert child.config["model"]["init_from"] == f"run:{parent.id}"  # resolved to a file on the worker
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


def test_the_worker_name_tells_hosts_with_one_host_name_apart(queued, settings):
    settings.LAYERLAB_WORKER_NAME = "host-b"
    assert execution.worker_identity() == f"host-b:{execution.os.getpid()}"
    # Host A's process 999999 is not this machine's: alive while its heartbeat is fresh...
    Run.objects.filter(id=queued.id).update(
        status="running", worker="host-a:999999", attempts=1, heartbeat_at=timezone.now()
    )
    assert runs_recover_orphans() == []
    # ...while this host's own dead process is known dead at once.
    Run.objects.filter(id=queued.id).update(worker="host-b:999999")
    assert runs_recover_orphans() == [queued.id]


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


def take_over(run_id: int) -> int:
    """What another worker does to a run it takes for orphaned: recovery re-queues it, its job claims it."""
    Run.objects.filter(id=run_id).update(status="queued", worker="")
    return execution.run_claim(run_id)


@pytest.mark.parametrize("hook", ["epoch", "checkpoint", "poll", "before_write", "finish"])
def test_an_execution_that_lost_its_run_stops_without_writing(queued, monkeypatch, hook):
    """A worker paused past its heartbeat loses the run to another; on waking it writes nothing more."""

    def train(cfg, run_dir, *, resume, device, callbacks, cache_dir):
        (cb,) = callbacks
        cb.on_run_start(None, {"epochs": 4})
        for epoch in (1, 2):
            cb.on_epoch_end(None, epoch, {"train_loss": 1.0 / epoch})
            cb.on_checkpoint(None, Path(run_dir) / f"epoch-{epoch:04d}.ckpt", epoch, "numbered")
        train.new_lease = take_over(queued.id)  # the worker was paused here, then woke up
        if hook == "epoch":
            cb.on_epoch_end(None, 3, {"train_loss": 0.1})
        elif hook == "checkpoint":
            cb.on_checkpoint(None, Path(run_dir) / "epoch-0003.ckpt", 3, "numbered")
        elif hook == "poll":
            cb.last_poll = -1e9
            cb.should_stop()
        elif hook == "before_write":
            cb.on_before_write(None, "metrics")
        return {"epochs": 4, "verdict": "from the old worker"}

    monkeypatch.setattr(execution, "train_experiment", train)
    assert execution.run_execute(run_id=queued.id) == "lost"
    run = Run.objects.get(id=queued.id)
    assert (run.status, run.lease, run.attempts, run.epoch) == ("running", train.new_lease, 2, 2)
    assert train.new_lease == 2 and run.summary == {} and run.finished_at is None
    assert sorted(MetricPoint.objects.filter(run=run).values_list("step", flat=True)) == [1, 2]
    assert sorted(Checkpoint.objects.filter(run=run).values_list("epoch", flat=True)) == [1, 2]
    assert not Entry.objects.filter(run=run).exists()


def test_a_fencing_check_stamps_the_heartbeat_and_is_trusted_only_briefly(
    queued, monkeypatch, django_assert_num_queries
):
    """The per-epoch check costs one query a window, not one an epoch; a pause past it queries again."""
    recorder = execution.RunRecorder(queued.id, lease=execution.run_claim(queued.id))
    clock = [1000.0]
    monkeypatch.setattr(recording, "boot_clock", lambda: clock[0])
    Run.objects.filter(id=queued.id).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    recorder.check()
    assert Run.objects.get(id=queued.id).heartbeat_at > timezone.now() - timedelta(minutes=1)
    with django_assert_num_queries(0):
        recorder.check()  # within the window no worker can have taken the run: recovery waits longer
    take_over(queued.id)  # the worker was paused (SIGSTOP counts on CLOCK_BOOTTIME) past the window
    clock[0] += recorder.trust_seconds
    with pytest.raises(execution.RunLeaseLost):
        recorder.check()


def test_a_lost_run_is_not_failed_by_its_old_worker(queued, monkeypatch, caplog):
    def train(cfg, run_dir, *, resume, device, callbacks, cache_dir):
        take_over(queued.id)
        raise RuntimeError("its files changed under it")

    monkeypatch.setattr(execution, "train_experiment", train)
    assert execution.run_execute(run_id=queued.id) == "lost"
    run = Run.objects.get(id=queued.id)
    assert run.status == "running" and run.error == ""
    # its failure is the lost lease: one warning, no traceback of a "failed" run in the worker's log
    assert "failed" not in caplog.text and not any(r.exc_info for r in caplog.records)


def test_the_heartbeat_of_a_lost_run_stops_beating(queued):
    lease = execution.run_claim(queued.id)
    take_over(queued.id)
    old = timezone.now() - timedelta(hours=1)
    Run.objects.filter(id=queued.id).update(heartbeat_at=old)
    with execution.Heartbeat(queued.id, 0.01, lease=lease) as beat:
        beat.stopped.wait(0.2)
    assert Run.objects.get(id=queued.id).heartbeat_at == old


def test_a_named_runs_resolved_config_records_its_name(people):
    run = run_create(project=people["project"], user=people["owner"], config=TINY, name="named")
    assert run.config["name"] == "named" and Run.objects.get(id=run.id).config["name"] == "named"


def test_an_attempt_that_died_before_its_first_checkpoint_leaves_no_metrics_file_behind(queued, monkeypatch):
    """Otherwise the next attempt would start fresh over a used directory and fail."""
    from layerlab.apps.runs.services import run_dir_for

    run_dir = run_dir_for(queued)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text('{"epoch": 1}\n')
    seen = []

    def train(cfg, run_dir, *, resume, device, callbacks, cache_dir):
        seen.append((resume, (Path(run_dir) / "metrics.jsonl").exists()))
        return {"epochs": 0}

    monkeypatch.setattr(execution, "train_experiment", train)
    assert execution.run_execute(run_id=queued.id) == "succeeded"
    assert seen == [(False, False)]


def test_run_create_checks_the_network_against_array_headers(people, tmp_path):
    import numpy as np
    from django.contrib.auth.models import User

    from layerlab.apps.projects.services import project_data_root_grant
    from layerlab.core.errors import ShapeError

    root = User.objects.create_superuser("root", password="root-Secret-pass-42")
    project_data_root_grant(project=people["project"], path=str(tmp_path), by=root)
    np.savez(tmp_path / "seq.npz", X=np.zeros((8, 5, 3), dtype=np.float32), y=np.arange(8) % 2)
    config = {
        "data": {"source": "npz", "path": str(tmp_path / "seq.npz")},
        "model": {"layers": [{"kind": "lstm", "hidden": 4}, {"kind": "linear", "out": "classes"}]},
    }
    # arrays were skipped before: the shape error came minutes later, from the worker
    with pytest.raises(ShapeError, match="data.layout: sequence"):
        run_create(project=people["project"], user=people["owner"], config=config, name="seq")
    config["data"]["layout"] = "sequence"
    assert run_create(project=people["project"], user=people["owner"], config=config, name="seq").status
