"""``layerlab train`` records its run in the lab's store (owner, project, metrics, checkpoints, resume),
never fails a training for the store's sake, and ``--remote`` trains on a live server."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from layerlab.cli.main import main

SPIRAL = {
    "seed": 1,
    "data": {"source": "spiral", "points_per_class": 40},
    "model": {"preset": "mlp", "options": {"hidden": [16]}},
    "train": {"epochs": 2, "batch_size": 32, "lr": 0.01, "num_threads": 1},
}
PASSWORD = "Long-enough-pass-42"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    for name in ("LAYERLAB_RECORD", "LAYERLAB_USER", "LAYERLAB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    torch.set_num_threads(1)
    return tmp_path / "home"


def write(tmp_path, data=SPIRAL, name="exp.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def train(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = main(["train", *args, "--json"])
    out, err = capsys.readouterr()
    return code, (last_json(out) if code == 0 else None), err


def series(run, name: str) -> list[tuple[int, float]]:
    return list(run.metric_points.filter(name=name).order_by("step").values_list("step", "value"))


def test_a_cli_run_is_recorded_with_metrics_checkpoints_owner_and_project(transactional_db, tmp_path, capsys):
    from layerlab.apps.journal.models import Entry
    from layerlab.apps.runs.models import Run

    code, summary, err = train(capsys, write(tmp_path), "--user", "ada", "--project", "spirals")
    assert code == 0, err
    run = Run.objects.get()
    assert summary["run_id"] == run.id
    assert (run.origin, run.status, run.epoch, run.epochs) == ("cli", "succeeded", 2, 2)
    assert run.created_by.username == "ada" and not run.created_by.has_usable_password()
    assert (run.project.name, run.project.owner.username) == ("spirals", "ada")
    assert run.run_dir == str(Path(summary["run_dir"]).resolve())
    assert run.summary["test_accuracy"] == summary["test_accuracy"] and run.verdict
    assert run.config["train"]["epochs"] == 2 and run.finished_at and not run.error
    lines = [json.loads(x) for x in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert series(run, "train_loss") == [(row["epoch"], pytest.approx(row["train_loss"])) for row in lines]
    assert [s for s, _ in series(run, "val_accuracy")] == [1, 2]
    recorded = {Path(path).name: epoch for path, epoch in run.checkpoints.values_list("path", "epoch")}
    assert recorded == {
        "epoch-0001.ckpt": 1,
        "epoch-0002.ckpt": 2,
        "best.ckpt": summary["best_epoch"],
        "last.ckpt": 2,
    }
    assert Entry.objects.filter(run=run).count() == 1  # the journal's hook ran, as for worker runs

    # what `layerlab runs ls` shows
    assert main(["runs", "--json", "ls"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["status"], r["origin"]) for r in listed] == [(run.id, "succeeded", "cli")]
    assert main(["runs", "ls"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[1] == "spirals"  # the project's name, not its id
    assert row[5] == f"{100 * summary['test_accuracy']:.1f}%"  # accuracy as a percentage, as train prints it

    # plain output names the run id
    assert main(["train", write(tmp_path), "--user", "ada", "--project", "spirals"]) == 0
    out = capsys.readouterr().out
    second = Run.objects.exclude(id=run.id).get()
    assert f"run id     {second.id}" in out and second.project_id == run.project_id


def test_default_owner_is_layerlab_user_and_project_local(transactional_db, tmp_path, capsys, monkeypatch):
    from layerlab.apps.runs.models import Run

    monkeypatch.setenv("LAYERLAB_USER", "bob")
    code, summary, err = train(capsys, write(tmp_path))
    assert code == 0, err
    run = Run.objects.get(id=summary["run_id"])
    assert (run.created_by.username, run.project.name, run.project.owner.username) == ("bob", "local", "bob")


def test_no_record_records_nothing(transactional_db, tmp_path, capsys):
    from layerlab.apps.runs.models import Run

    code, summary, err = train(capsys, write(tmp_path), "--no-record")
    assert code == 0, err
    assert summary["run_id"] is None and Run.objects.count() == 0


def test_no_record_keeps_django_out_of_the_process(tmp_path):
    script = (
        "import sys; from layerlab.cli.main import main; "
        f"code = main(['train', {write(tmp_path)!r}, '--no-record', '--json']); "
        "print(code, 'django' in sys.modules)"
    )
    env = {**os.environ, "LAYERLAB_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "0 False", done.stderr
    assert not (tmp_path / "home" / "layerlab.sqlite3").exists()


def test_resume_continues_the_same_row_without_duplicate_points(transactional_db, tmp_path, capsys):
    from layerlab.apps.runs.models import Run

    code, first, err = train(capsys, write(tmp_path, {**SPIRAL, "train": {**SPIRAL["train"], "epochs": 3}}))
    assert code == 0, err
    run_dir = Path(first["run_dir"])
    # As if killed after epoch 3 was reported but before its checkpoint: epoch 3 is trained again.
    for name in ("epoch-0003.ckpt", "last.ckpt", "best.ckpt"):
        (run_dir / "checkpoints" / name).unlink(missing_ok=True)
    code, resumed, err = train(capsys, "--resume", str(run_dir), "--set", "train.epochs=4")
    assert code == 0 and "at epoch 3/4" in err, err
    assert resumed["run_id"] == first["run_id"] and Run.objects.count() == 1
    run = Run.objects.get()
    assert (run.status, run.epoch, run.epochs, run.attempts) == ("succeeded", 4, 4, 2)
    assert [s for s, _ in series(run, "train_loss")] == [1, 2, 3, 4]
    names = set(run.metric_points.values_list("name", flat=True))
    assert len(names) >= 5 and run.metric_points.count() == 4 * len(names)


def test_a_resume_records_the_points_and_checkpoints_a_crash_kept_from_the_database(
    transactional_db, tmp_path, capsys
):
    """A local run's checkpoint rows and points are queued, not waited for: a crash may keep them
    from the database, and resuming the directory records them from its metrics.jsonl."""
    from layerlab.apps.runs.models import Run

    code, first, err = train(capsys, write(tmp_path, {**SPIRAL, "train": {**SPIRAL["train"], "epochs": 3}}))
    assert code == 0, err
    run = Run.objects.get()
    lines = [json.loads(x) for x in (Path(first["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    run.metric_points.all().delete()  # as if the process died with the writer's queue not committed
    run.checkpoints.all().delete()
    code, resumed, err = train(capsys, "--resume", first["run_dir"], "--set", "train.epochs=5")
    assert code == 0, err
    run.refresh_from_db()
    assert [s for s, _ in series(run, "train_loss")] == [1, 2, 3, 4, 5], (err, resumed, run.epoch, run.status)
    assert series(run, "train_loss")[:3] == [(r["epoch"], pytest.approx(r["train_loss"])) for r in lines]
    recorded = {Path(path).name: epoch for path, epoch in run.checkpoints.values_list("path", "epoch")}
    assert recorded["last.ckpt"] == 5 and recorded["epoch-0005.ckpt"] == 5


def test_a_failed_training_is_recorded_as_failed_with_the_reason(transactional_db, tmp_path, capsys):
    from layerlab.apps.runs.models import Run

    diverging = {
        "optimizer": "sgd",
        "lr": 100,
        "momentum": 0.99,
        "loss": "squared_hinge",
    }  # lr is 100 at most
    bad = {**SPIRAL, "train": {**SPIRAL["train"], **diverging}}
    code = main(["train", write(tmp_path, bad), "--user", "ada"])
    err = capsys.readouterr().err
    assert code == 5, err
    run = Run.objects.get()
    assert run.status == "failed" and "diverged" in run.error and run.finished_at


def test_a_project_the_user_may_only_view_is_one_error_line(transactional_db, tmp_path, capsys):
    from django.contrib.auth.models import Group, User

    from layerlab.apps.projects.services import project_create, project_share
    from layerlab.apps.runs.models import Run

    owner, viewer, editor = (User.objects.create_user(n, password=PASSWORD) for n in ("own", "vic", "ed"))
    viewer.groups.add(Group.objects.create(name="viewers"))
    editor.groups.add(Group.objects.create(name="editors"))
    project = project_create(owner=owner, name="lab")
    project_share(project=project, group_name="viewers", role="viewer")
    project_share(project=project, group_name="editors", role="editor")

    code = main(["train", write(tmp_path), "--user", "vic", "--project", "lab"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "may only view project 'lab'" in err[0], err
    assert Run.objects.count() == 0

    code, summary, err = train(capsys, write(tmp_path), "--user", "ed", "--project", "lab")
    assert code == 0, err
    assert Run.objects.get(id=summary["run_id"]).project_id == project.id


def test_createuser_claims_a_user_made_by_train(transactional_db, tmp_path, capsys, monkeypatch):
    from django.contrib.auth.models import User

    from layerlab.apps.runs.models import Run

    assert main(["train", write(tmp_path), "--user", "carol", "--no-record"]) == 0
    assert not User.objects.filter(username="carol").exists()
    code, summary, err = train(capsys, write(tmp_path), "--user", "carol")
    assert code == 0, err
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["createuser", "carol"]) == 0
    assert capsys.readouterr().out.strip() == "claimed user carol"
    carol = User.objects.get(username="carol")
    assert carol.check_password(PASSWORD) and carol.has_usable_password()
    assert Run.objects.get(id=summary["run_id"]).created_by_id == carol.id
    # a user with a password is not claimed again
    monkeypatch.setattr(sys, "stdin", io.StringIO("Another-long-pass-77\n"))
    assert main(["createuser", "carol"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert User.objects.get(username="carol").check_password(PASSWORD)


def test_an_unreachable_database_is_one_warning_and_training_succeeds(tmp_path):
    env = {
        **os.environ,
        "LAYERLAB_HOME": str(tmp_path / "home"),
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/none",
    }
    done = subprocess.run(
        [sys.executable, "-m", "layerlab.cli.main", "train", write(tmp_path), "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = last_json(done.stdout)
    assert summary["run_id"] is None and summary["epochs"] == 2
    warnings = [line for line in done.stderr.splitlines() if line.startswith(("warning", "error", "Trace"))]
    assert len(warnings) == 1 and warnings[0].startswith("warning: not recording this run"), done.stderr


@pytest.mark.e2e
def test_remote_trains_on_a_live_server_and_reports_the_summary(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
    from livelab import LiveLab, free_port

    lab = LiveLab(tmp_path / "lab")
    lab.home.mkdir()
    lab.env["LAYERLAB_IMPORT_ROOTS"] = str(tmp_path / "allowed")
    try:
        lab.cli("migrate", "--quiet")
        client = lab.user_client("alice")
        lab.start("serve", "--port", str(lab.port), "--workers", "1", "--web-workers", "1")
        lab.wait_up(client)
        project = client.request("POST", "projects/", {"name": "remote"})
        url = f"http://127.0.0.1:{lab.port}"
        env = {**os.environ, "LAYERLAB_HOME": str(tmp_path / "local"), "LAYERLAB_TOKEN": client.token}

        def layerlab(*args, **extra):
            return subprocess.run(
                [sys.executable, "-m", "layerlab.cli.main", "train", *args],
                env={**env, **extra}, capture_output=True, text=True, timeout=180,
            )  # fmt: skip

        done = layerlab(write(tmp_path), "--remote", url, "--project", "remote", "--json")
        assert done.returncode == 0, (done.stderr, lab.logs())
        summary = last_json(done.stdout)
        assert summary["epochs"] == 2 and summary["test_accuracy"] is not None
        run = client.run(summary["run_id"])
        assert run["status"] == "succeeded" and run["project"] == project["id"] and run["origin"] == "server"
        assert f"run {run['id']}: succeeded" in done.stderr  # progress followed

        plain = layerlab(write(tmp_path), "--remote", url, "--project", str(project["id"]))
        assert plain.returncode == 0 and "run id" in plain.stdout and "accuracy" in plain.stdout, plain.stderr
        assert not (tmp_path / "local" / "runs").exists()  # nothing trained here

        def one_line(result, pattern):
            lines = result.stderr.strip().splitlines()
            assert result.returncode != 0 and len(lines) == 1 and pattern in lines[0], result.stderr

        one_line(layerlab(write(tmp_path), "--remote", f"http://127.0.0.1:{free_port()}"), "cannot reach")
        one_line(layerlab(write(tmp_path), "--remote", url, LAYERLAB_TOKEN="wrong"), "401")
        outside = tmp_path / "outside.npz"
        outside.write_bytes(b"")
        npz = {**SPIRAL, "data": {"source": "npz", "path": str(outside)}}
        one_line(layerlab(write(tmp_path, npz, "npz.yaml"), "--remote", url, "--project", "remote"), "400")
        one_line(layerlab(write(tmp_path), "--remote", url, "--project", "nope"), "no project 'nope'")
    finally:
        lab.stop()


def test_cancel_of_a_cli_run_asks_its_process_or_closes_it_when_the_process_is_gone(
    transactional_db, tmp_path
):
    from datetime import timedelta

    from django.utils import timezone

    from layerlab.apps.runs.local import LocalRunRecorder, local_run_open
    from layerlab.apps.runs.models import Run
    from layerlab.apps.runs.services import run_cancel

    def opened(name: str) -> Run:
        return local_run_open(username="ada", project="local", config=SPIRAL, run_dir=tmp_path / name)

    alive = opened("alive")
    assert run_cancel(run=alive).status == "running"  # the process stops after its current step
    recorder = LocalRunRecorder(alive.id, warn=pytest.fail)
    assert recorder.should_stop() and recorder.cancelled
    recorder.finish("cancelled", {"epochs": 1, "verdict": "stopped"})
    assert Run.objects.get(id=alive.id).status == "cancelled"

    gone = opened("gone")
    Run.objects.filter(id=gone.id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert run_cancel(run=gone).status == "cancelled"  # nobody would ever answer


def test_a_store_failure_mid_run_is_one_warning(transactional_db, tmp_path, monkeypatch):
    from layerlab.apps.runs import recorder as recording
    from layerlab.apps.runs.local import LocalRunRecorder, local_run_open

    run = local_run_open(username="ada", project="local", config=SPIRAL, run_dir=tmp_path / "r")
    warnings = []
    recorder = LocalRunRecorder(run.id, warn=warnings.append)

    def broken(*args):
        raise RuntimeError("disk I/O error\ndetails")

    monkeypatch.setattr(recording, "metric_rows_upsert", broken)
    recorder.on_epoch_end(None, 1, {"train_loss": 1.0})
    recorder.on_epoch_end(None, 2, {"train_loss": 0.5})
    recorder.on_checkpoint(None, tmp_path / "r" / "x.ckpt", 2, "numbered")
    assert warnings == [f"stopped recording run {run.id} (disk I/O error); training goes on"]
    recorder.finish("succeeded", {"epochs": 2})
    run.refresh_from_db()
    assert run.status == "succeeded" and run.epoch == 2 and run.checkpoints.count() == 0


def test_a_store_failure_before_a_file_write_does_not_stop_the_training(
    transactional_db, tmp_path, monkeypatch
):
    from layerlab.apps.runs import execution
    from layerlab.apps.runs.local import LocalRunRecorder, local_run_open

    run = local_run_open(username="ada", project="local", config=SPIRAL, run_dir=tmp_path / "r")
    warnings = []
    recorder = LocalRunRecorder(run.id, warn=warnings.append)

    def broken(self):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(execution.RunRecorder, "check", broken)
    recorder.on_before_write(None, "metrics")  # the engine writes its file anyway
    assert warnings == [f"stopped recording run {run.id} (database is locked); training goes on"]


def test_reopening_a_directory_stops_the_process_still_recording_it(transactional_db, tmp_path):
    from layerlab.apps.runs.local import LocalRunRecorder, local_run_open
    from layerlab.apps.runs.models import MetricPoint

    run = local_run_open(username="ada", project="local", config=SPIRAL, run_dir=tmp_path / "r")
    warnings = []
    old = LocalRunRecorder(run.id, warn=warnings.append)
    old.on_epoch_end(None, 1, {"train_loss": 1.0})
    again = local_run_open(
        username="ada", project="local", config=SPIRAL, run_dir=tmp_path / "r", resume=True
    )
    assert again.id == run.id and again.lease == run.lease + 1
    old.on_epoch_end(None, 2, {"train_loss": 0.5})
    assert warnings and "no longer executed here" in warnings[0]
    assert list(MetricPoint.objects.filter(run_id=run.id).values_list("step", flat=True)) == [1]
