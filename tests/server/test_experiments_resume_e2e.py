"""A lab experiment cancelled on a real ``layerlab serve`` with workers, then resumed with ``layerlab experiment
resume ID --remote``: the workers train only the trials that had not completed, and the report comes back."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from livelab import LiveLab

pytestmark = pytest.mark.e2e

CONFIG = {
    "name": "resumed-seeds",
    "data": {"source": "spiral", "classes": 3, "points_per_class": 20},
    "model": {"preset": "mlp", "options": {"hidden": [8]}},
    "train": {"epochs": 3, "num_threads": 1},
    "experiment": {"kind": "seeds", "seeds": [0, 1, 2]},
}


def settled(client, experiment_id: int) -> dict:
    """The experiment once none of its trial runs is still stopping (at most 5 minutes)."""
    for _ in range(300):
        experiment = client.request("GET", f"experiments/{experiment_id}/")
        if not experiment["counts"]["running"]:
            return experiment
        time.sleep(1.0)
    raise AssertionError(f"experiment {experiment_id}'s trial runs did not stop: {experiment['counts']}")


def test_a_cancelled_experiment_resumes_on_the_workers(tmp_path):
    lab = LiveLab(tmp_path / "home")
    lab.home.mkdir()
    try:
        lab.cli("migrate", "--quiet")
        client = lab.user_client()
        lab.start("serve", "--port", str(lab.port), "--workers", "2", "--web-workers", "1")
        lab.wait_up(client)
        project = client.request("POST", "projects/", {"name": "research"})["id"]
        created = client.request("POST", "experiments/", {"project": project, "config": CONFIG})
        client.request("POST", f"experiments/{created['id']}/cancel/")
        cancelled = settled(client, created["id"])
        assert cancelled["status"] == "cancelled"
        kept = {t["key"]: t["run"] for t in cancelled["trials"] if t["status"] == "completed"}

        url = f"http://127.0.0.1:{lab.port}"
        done = subprocess.run(
            [sys.executable, "-m", "layerlab.cli.main", "experiment", "resume", str(created["id"]),
             "--remote", url, "--json"],
            env={**lab.env, "LAYERLAB_TOKEN": client.token}, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + lab.logs()
        table = json.loads(done.stdout.strip().splitlines()[-1])
        assert [row["seed"] for row in table["rows"]] == [0, 1, 2] and table["counts"] == {"completed": 3}
        finished = client.request("GET", f"experiments/{created['id']}/")
        runs = {t["key"]: t["run"] for t in finished["trials"]}
        assert all(runs[key] == run for key, run in kept.items())  # completed trials kept their runs
        assert all(client.request("GET", f"runs/{r}/")["status"] == "succeeded" for r in runs.values())
    finally:
        lab.stop()
