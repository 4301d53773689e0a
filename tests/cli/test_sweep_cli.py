"""``layerlab sweep CONFIG``: trials trained in this process and recorded; bad input is one line, exit 2,
and leaves no sweep behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

CONFIG = {
    "seed": 1,
    "data": {"source": "spiral", "points_per_class": 30},
    "model": {"preset": "mlp", "options": {"hidden": [8]}},
    "train": {"epochs": 2, "batch_size": 32, "num_threads": 1},
    "sweep": {"method": "grid", "parameters": {"train.lr": [0.01, 0.1]}, "metric": "val_accuracy"},
}


def sweep_cli(tmp_path, config: dict, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "LAYERLAB_HOME": str(tmp_path / "home"), "DATABASE_URL": "", "LAYERLAB_USER": "me"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "-m", "layerlab.cli.main", "sweep", str(path), *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_sweep_trains_every_trial_and_reports_the_best(tmp_path):
    done = sweep_cli(tmp_path, CONFIG, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["counts"]["complete"] == 2
    assert result["best"]["params"]["train.lr"] in (0.01, 0.1)


@pytest.mark.slow
def test_a_bad_sweep_is_one_line_exit_2_and_nothing_created(tmp_path):
    bad = {**CONFIG, "sweep": {**CONFIG["sweep"], "parameters": {"train.lrr": [0.1]}}}
    done = sweep_cli(tmp_path, bad)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: sweep.parameters: 'train.lrr' is not a key of the config; did you mean 'train.lr'?"
    )
    assert done.stdout == ""
    grid = {**CONFIG, "sweep": {**CONFIG["sweep"], "trials": 1}}
    done = sweep_cli(tmp_path, grid)
    assert done.returncode == 2 and "the grid has 2 points, more than trials (1)" in done.stderr
    import sqlite3

    db = sqlite3.connect(tmp_path / "home" / "layerlab.sqlite3")
    assert db.execute("SELECT count(*) FROM sweeps_sweep").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM runs_run").fetchone() == (0,)
