"""``layerlab experiment run CONFIG``: trials trained here and recorded in the store, the table as JSON, a
rerun that redoes nothing; bad input is one line, exit 2, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest
import yaml

CONFIG = {
    "name": "cli-seeds",
    "data": {"source": "spiral", "classes": 3, "points_per_class": 15},
    "model": {"preset": "mlp", "options": {"hidden": [6]}},
    "train": {"epochs": 2, "batch_size": 32, "num_threads": 1},
    "experiment": {"kind": "seeds", "seeds": [0, 1]},
}


def experiment_cli(tmp_path, config: dict, *args: str, verb: str = "run") -> subprocess.CompletedProcess:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "LAYERLAB_HOME": str(tmp_path / "home"), "DATABASE_URL": "", "LAYERLAB_USER": "me"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [sys.executable, "-m", "layerlab.cli.main", "experiment", verb]
    if verb == "run":
        command.append(str(path))
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_experiment_runs_records_and_a_rerun_redoes_nothing(tmp_path):
    done = experiment_cli(tmp_path, CONFIG, "--json")
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout.strip().splitlines()[-1])
    assert table["columns"][:3] == ["seed", "status", "test_accuracy"]
    assert [row["seed"] for row in table["rows"]] == [0, 1] and table["counts"] == {"completed": 2}
    assert "trial seed=1: completed" in done.stderr and "2 trained, 0 resumed" in done.stderr
    db = sqlite3.connect(tmp_path / "home" / "layerlab.sqlite3")
    assert db.execute("SELECT status, kind, origin FROM experiments_experiment").fetchall() == [
        ("finished", "seeds", "cli")
    ]
    assert db.execute("SELECT status FROM runs_run").fetchall() == [("succeeded",), ("succeeded",)]
    assert db.execute(
        "SELECT count(*) FROM journal_entry WHERE title LIKE 'Experiment 1 finished%'"
    ).fetchone() == (1,)

    again = experiment_cli(tmp_path, CONFIG)
    assert again.returncode == 0, again.stderr
    assert "0 trained, 0 resumed" in again.stdout and "| seed | status | test_accuracy |" in again.stdout
    assert db.execute("SELECT count(*) FROM runs_run").fetchone() == (2,)
    assert db.execute("SELECT count(*) FROM experiments_experiment").fetchone() == (1,)


@pytest.mark.parametrize(
    ("edit", "args", "line"),
    [
        (
            {"kind": "seedz"},
            (),
            "error: experiment.kind: unknown experiment kind 'seedz'; did you mean 'seeds'?",
        ),
        ({"seedss": [1]}, (), "error: experiment: unknown key 'seedss'; did you mean 'seeds'?"),
        (
            {},
            ("--set", "experiment.seeds=[-1]"),
            "error: experiment.seeds: seeds[0] must be in [0, 4294967295], got -1",
        ),
        ({}, ("--parallel", "0"), "error: --parallel: trials at once must be in [1, 64], got 0"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, edit, args, line):
    config = {**CONFIG, "experiment": {**CONFIG["experiment"], **edit}}
    done = experiment_cli(tmp_path, config, *args)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [line]
    assert done.stdout == ""
    assert not (tmp_path / "home" / "experiments").exists()


def test_kinds_are_listed(tmp_path):
    done = experiment_cli(tmp_path, CONFIG, verb="kinds")
    assert done.returncode == 0
    assert any(line.startswith("seeds ") for line in done.stdout.splitlines())
