"""``layerlab experiment resume ID [--remote URL]``: a lab experiment resumed on a server and followed; a wrong
id is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CONFIG = {
    "name": "resume-seeds",
    "data": {"source": "spiral", "classes": 3, "points_per_class": 15},
    "model": {"preset": "mlp", "options": {"hidden": [6]}},
    "train": {"epochs": 1, "batch_size": 32, "num_threads": 1},
    "experiment": {"kind": "seeds", "seeds": [0]},
}


def test_resuming_an_experiment_the_store_lacks_is_one_line(tmp_path):
    env = {**os.environ, "LAYERLAB_HOME": str(tmp_path / "home"), "DATABASE_URL": "", "LAYERLAB_USER": "me"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "layerlab.cli.main", "experiment", "resume", "7"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert (
        done.stderr.strip().splitlines()[-1] == "error: experiment 7 does not exist in this machine's store"
    )


@pytest.mark.django_db(transaction=True)
def test_resume_remote_runs_a_failed_experiment_on_and_prints_its_table(
    people, live_server, monkeypatch, capsys
):
    """An experiment whose trial completed but whose report failed: resumed on the server, it finishes
    there (no trial redone) and the command prints the table; a viewer is refused in one line."""
    from layerlab.apps.accounts.services import user_token
    from layerlab.apps.experiments.models import Experiment
    from layerlab.apps.experiments.services import experiment_create
    from layerlab.apps.runs import execution
    from layerlab.apps.runs.models import Run
    from layerlab.cli.main import main
    from layerlab.research.base import known_kinds

    def broken(self, base, options, results):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(known_kinds()["seeds"], "report", broken)
    experiment = experiment_create(project=people["project"], user=people["owner"], config=CONFIG)
    run = Run.objects.get(experiment_trial__experiment=experiment)
    execution.run_execute(run_id=run.id)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FAILED
    assert experiment.error == "the seeds experiment failed: ZeroDivisionError: division by zero"
    monkeypatch.undo()

    monkeypatch.setenv("LAYERLAB_TOKEN", user_token(username="viewer"))
    assert main(["experiment", "resume", str(experiment.id), "--remote", live_server.url]) == 1
    assert "403" in capsys.readouterr().err
    monkeypatch.setenv("LAYERLAB_TOKEN", user_token(username="editor"))
    assert main(["experiment", "resume", str(experiment.id), "--remote", live_server.url, "--json"]) == 0
    table = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [row["seed"] for row in table["rows"]] == [0] and table["counts"] == {"completed": 1}
    assert Run.objects.get(id=run.id).attempts == 1  # the completed trial was not trained again
