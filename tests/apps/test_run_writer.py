"""The recorders' background metric writer: off the training thread, bounded, flushed, still fenced."""

from __future__ import annotations

import threading

import pytest

from layerlab.apps.runs import execution
from layerlab.apps.runs import recorder as recording
from layerlab.apps.runs.local import LocalRunRecorder
from layerlab.apps.runs.models import MetricPoint, Run
from layerlab.apps.runs.recorder import MetricWriter, RunLeaseLost, RunRecorder
from layerlab.apps.runs.services import run_create

pytestmark = pytest.mark.django_db(transaction=True)  # the writer thread has its own connection


@pytest.fixture
def claimed(people):
    run = run_create(project=people["project"], user=people["owner"], config={}, name="w")
    return run, execution.run_claim(run.id)


def checkpoint_path(home, run, epoch: int):
    """A checkpoint file in the run's working directory (``LAYERLAB_RUNS_DIR/<id>``, lab_home's)."""
    return home / "runs" / str(run.id) / "checkpoints" / f"epoch-{epoch:04d}.ckpt"


def steps(run) -> list[int]:
    return sorted(MetricPoint.objects.filter(run=run).values_list("step", flat=True))


def blocked_recorder(run, lease, publish=False):
    """A recorder whose writer waits for ``gate`` before each write (the database is slow)."""
    recorder = RunRecorder(run.id, lease=lease, background=True)
    recorder.publish = publish
    recorder.on_run_start(None, {"epochs": 9})
    gate = threading.Event()
    store = recorder.store_epochs

    def slow(*args):
        gate.wait(10)
        store(*args)

    recorder.store_epochs = slow
    return recorder, gate


def test_epoch_points_are_written_off_the_training_thread_and_flushed_at_checkpoints(
    claimed, tmp_path, monkeypatch
):
    """A published run's checkpoint waits for the database: another machine resumes from its rows."""
    monkeypatch.setattr(recording, "run_file_publish", lambda **kwargs: None)
    monkeypatch.setattr(recording, "run_checkpoints_prune", lambda **kwargs: None)
    run, lease = claimed
    recorder, gate = blocked_recorder(run, lease, publish=True)
    assert recorder.writer is not None
    for epoch in (1, 2):
        recorder.on_epoch_end(None, epoch, {"train_loss": 1.0 / epoch})  # returns while the write waits
    assert steps(run) == []
    gate.set()
    recorder.on_checkpoint(None, checkpoint_path(tmp_path, run, 2), 2, "numbered")
    assert steps(run) == [1, 2]  # every point before the checkpoint is committed
    assert Run.objects.get(id=run.id).epoch == 2
    recorder.on_epoch_end(None, 3, {"train_loss": 0.3})
    recorder.on_run_end(None, {})
    assert steps(run) == [1, 2, 3]
    recorder.close()
    assert not recorder.writer.thread.is_alive()


def test_a_local_runs_checkpoint_rows_are_written_with_its_points(claimed, tmp_path):
    """``layerlab train``'s checkpoints never wait for a commit: their rows go with the epochs
    buffered before them, in one write of the writer thread (a resume catches the database up from
    the directory)."""
    from layerlab.apps.runs.models import Checkpoint

    run, lease = claimed
    recorder, gate = blocked_recorder(run, lease)
    assert not recorder.checkpoints_wait
    for epoch in (1, 2):
        recorder.on_epoch_end(None, epoch, {"train_loss": 1.0 / epoch})
        recorder.on_before_write(None, "checkpoint")
        recorder.on_checkpoint(None, checkpoint_path(tmp_path, run, epoch), epoch, "numbered")  # at once
    assert steps(run) == [] and not Checkpoint.objects.filter(run=run).exists()
    gate.set()
    recorder.on_run_end(None, {})  # the end flushes
    assert steps(run) == [1, 2]
    assert list(Checkpoint.objects.filter(run=run).values_list("epoch", flat=True)) == [1, 2]
    recorder.close()


def test_a_crash_loses_at_most_the_points_since_the_last_flush(claimed, tmp_path, monkeypatch):
    run, lease = claimed
    recorder = RunRecorder(run.id, lease=lease, background=True)
    recorder.publish = False
    recorder.on_run_start(None, {"epochs": 9})
    recorder.on_epoch_end(None, 1, {"train_loss": 1.0})
    recorder.on_checkpoint(None, checkpoint_path(tmp_path, run, 1), 1, "numbered")
    recorder.flush()

    def broken(run_id, rows):
        raise OSError("disk gone")

    monkeypatch.setattr(recording, "metric_rows_upsert", broken)
    recorder.on_epoch_end(None, 2, {"train_loss": 0.5})
    with pytest.raises(OSError):
        recorder.flush()  # the writer's error reaches the training thread
    with pytest.raises(OSError):
        recorder.should_stop()  # and stops it at the next hook
    assert steps(run) == [1]  # the flushed point is kept; the failed epoch left nothing half-written
    assert Run.objects.get(id=run.id).epoch == 1
    with pytest.raises(OSError):
        recorder.close()
    assert not recorder.writer.thread.is_alive()


def test_a_lease_lost_found_by_the_writer_stops_training_at_the_next_hook(claimed):
    run, lease = claimed
    recorder = RunRecorder(run.id, lease=lease, background=True)
    recorder.publish = False
    recorder.on_run_start(None, {"epochs": 9})
    recorder.on_epoch_end(None, 1, {"train_loss": 1.0})
    recorder.flush()
    Run.objects.filter(id=run.id).update(status="queued")
    new_lease = execution.run_claim(run.id)  # another worker took the run
    recorder.on_epoch_end(None, 2, {"train_loss": 0.5})
    with pytest.raises(RunLeaseLost):
        recorder.flush()  # the writer found the run taken over
    recorder.last_poll = 1e18  # no cancel poll: the writer's error alone stops training
    with pytest.raises(RunLeaseLost):
        recorder.should_stop()
    with pytest.raises(RunLeaseLost):
        recorder.on_epoch_end(None, 3, {"train_loss": 0.1})
    assert steps(run) == [1]  # nothing written under the new owner's lease
    assert Run.objects.get(id=run.id).lease == new_lease


def test_a_full_queue_blocks_the_writer_never_drops_a_point(claimed):
    run, lease = claimed
    recorder = RunRecorder(run.id, lease=lease, background=False)
    recorder.on_run_start(None, {"epochs": 50})
    assert recorder.writer is None  # background=False writes in the training thread
    writer = MetricWriter("test", maxsize=2)
    done = []
    for epoch in range(1, 41):
        writer.put(lambda e=epoch: done.append(e))
    writer.close()
    assert done == list(range(1, 41))  # all of them, in order


def test_inside_a_transaction_the_recorder_writes_in_place(claimed):
    from django.db import transaction

    run, lease = claimed
    recorder = RunRecorder(run.id, lease=lease)
    recorder.publish = False
    with transaction.atomic():
        recorder.on_run_start(None, {"epochs": 1})
        recorder.on_epoch_end(None, 1, {"train_loss": 1.0})
        assert recorder.writer is None and steps(run) == [1]


def test_the_cli_recorder_stores_every_point_by_the_end(people, tmp_path):
    from layerlab.apps.runs.local import local_run_open

    run = local_run_open(username="owner", project="lab", config={"name": "cli"}, run_dir=tmp_path / "r")
    recorder = LocalRunRecorder(run.id, warn=print)
    recorder.on_run_start(None, {"epochs": 3})
    for epoch in (1, 2, 3):
        recorder.on_epoch_end(None, epoch, {"train_loss": 1.0 / epoch})
    recorder.finish("succeeded", {"epochs": 3})
    assert steps(run) == [1, 2, 3]
    assert recorder.writer is not None and not recorder.writer.thread.is_alive()
    assert Run.objects.get(id=run.id).status == "succeeded"


def test_a_worker_run_keeps_every_point_when_the_engine_crashes(claimed, monkeypatch, tmp_path):
    run, _ = claimed
    Run.objects.filter(id=run.id).update(status="queued")

    def train(cfg, run_dir, *, resume, device, callbacks, cache_dir):
        (cb,) = callbacks
        cb.on_run_start(None, {"epochs": 5})
        for epoch in (1, 2, 3):
            cb.on_epoch_end(None, epoch, {"train_loss": 1.0 / epoch})
        raise RuntimeError("the engine crashed")

    monkeypatch.setattr(execution, "train_experiment", train)
    monkeypatch.setattr(recording, "run_files_publish", lambda **kw: None)
    assert execution.run_execute(run_id=run.id) == "failed"
    assert steps(run) == [1, 2, 3]  # queued points are written before the run is closed
