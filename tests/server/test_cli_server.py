"""The server's commands: migrate, createuser, token (real processes), runs ls|show|compare (in process)."""

from __future__ import annotations

import json

import pytest
from livelab import LiveLab

from layerlab.cli.main import main


@pytest.fixture
def home(tmp_path):
    lab = LiveLab(tmp_path)
    return lab


def run_cli(lab: LiveLab, *args: str, stdin: str = ""):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "layerlab.cli.main", *args],
        input=stdin,
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_accounts_commands_and_their_errors(home):
    not_ready = run_cli(home, "token", "alice")
    assert (
        not_ready.returncode == 1
        and "layerlab migrate" in not_ready.stderr
        and "Traceback" not in not_ready.stderr
    )
    assert run_cli(home, "migrate", "--quiet").returncode == 0
    assert (home.home / "secret_key").is_file()
    weak = run_cli(home, "createuser", "alice", stdin="short\n")
    assert weak.returncode == 1 and "too short" in weak.stderr
    made = run_cli(home, "createuser", "alice", "--superuser", stdin="A-long-enough-pass-1\n")
    assert made.returncode == 0 and "superuser alice" in made.stdout
    again = run_cli(home, "createuser", "alice", stdin="A-long-enough-pass-1\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    token = run_cli(home, "token", "alice")
    assert token.returncode == 0 and len(token.stdout.strip()) == 40
    assert run_cli(home, "token", "alice").stdout == token.stdout  # the same token every time
    missing = run_cli(home, "token", "bob")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_runs_remote_needs_a_token(home, monkeypatch, capsys):
    monkeypatch.delenv("LAYERLAB_TOKEN", raising=False)
    assert main(["runs", "--remote", "http://127.0.0.1:9", "ls"]) == 1
    assert "LAYERLAB_TOKEN" in capsys.readouterr().err


@pytest.mark.django_db
def test_runs_ls_show_compare_read_the_store(people, capsys):
    from layerlab.apps.runs.models import MetricPoint, Run
    from layerlab.apps.runs.services import run_create

    a = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}}, name="a")
    b = run_create(
        project=people["project"], user=people["owner"], config={"train": {"epochs": 3, "lr": 0.01}}, name="b"
    )
    Run.objects.filter(id=a.id).update(status="succeeded", summary={"test_accuracy": 0.75})
    MetricPoint.objects.create(run=a, name="train_loss", step=1, value=0.5)
    assert main(["runs", "ls"]) == 0
    out = capsys.readouterr().out
    assert "succeeded" in out and "queued" in out and "75.0%" in out
    assert main(["runs", "--json", "show", str(a.id)]) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert shown["last_metrics"]["train_loss"] == {"step": 1, "value": 0.5}
    assert main(["runs", "compare", str(a.id), str(b.id)]) == 0
    table = capsys.readouterr().out
    assert "train.epochs" in table and "train.lr" in table and "train.batch_size" not in table
    assert main(["runs", "show", "999"]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.django_db(transaction=True)
def test_runs_ls_and_show_remote(people, live_server, monkeypatch, capsys):
    from layerlab.apps.accounts.services import user_token
    from layerlab.apps.runs.services import run_create

    run = run_create(
        project=people["project"], user=people["owner"], config={"train": {"epochs": 1}}, name="far"
    )
    monkeypatch.setenv("LAYERLAB_TOKEN", user_token(username="viewer"))
    assert main(["runs", "--remote", live_server.url, "ls"]) == 0
    assert "far" in capsys.readouterr().out
    assert main(["runs", "--remote", live_server.url, "--json", "show", str(run.id)]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "far"
    # the options may also follow the action, as `layerlab runs ls --remote URL`
    assert main(["runs", "ls", "--remote", live_server.url, "--json"]) == 0
    assert [item["name"] for item in json.loads(capsys.readouterr().out)] == ["far"]
    monkeypatch.setenv("LAYERLAB_TOKEN", user_token(username="stranger"))
    assert main(["runs", "--remote", live_server.url, "show", str(run.id)]) == 1
    assert "404" in capsys.readouterr().err
