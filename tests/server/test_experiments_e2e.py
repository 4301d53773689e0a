"""An experiment on a real ``layerlab serve`` with workers, created and followed by ``layerlab experiment run
--remote``: its trials train on the workers as runs, the finished-run hook advances it, the report comes back
as the table on stdout, and its PNG plot is served."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest
import yaml
from livelab import LiveLab

pytestmark = pytest.mark.e2e

CONFIG = {
    "name": "remote-seeds",
    "data": {"source": "spiral", "classes": 3, "points_per_class": 20},
    "model": {"preset": "mlp", "options": {"hidden": [8]}},
    "train": {"epochs": 2, "num_threads": 1},
    "experiment": {"kind": "seeds", "seeds": [0, 1]},
}


def test_remote_experiment_runs_on_workers_and_reports(tmp_path):
    lab = LiveLab(tmp_path / "home")
    lab.home.mkdir()
    try:
        lab.cli("migrate", "--quiet")
        client = lab.user_client()
        lab.start("serve", "--port", str(lab.port), "--workers", "2", "--web-workers", "1")
        lab.wait_up(client)
        client.request("POST", "projects/", {"name": "research"})
        path = tmp_path / "exp.yaml"
        path.write_text(yaml.safe_dump(CONFIG))
        url = f"http://127.0.0.1:{lab.port}"
        env = {**lab.env, "LAYERLAB_TOKEN": client.token}
        done = subprocess.run(
            [sys.executable, "-m", "layerlab.cli.main", "experiment", "run", str(path), "--remote", url,
             "--project", "research", "--json"],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + lab.logs()
        table = json.loads(done.stdout.strip().splitlines()[-1])
        assert [row["seed"] for row in table["rows"]] == [0, 1]
        assert table["counts"] == {"completed": 2}
        experiment = client.request("GET", f"experiments/{table['experiment_id']}/")
        assert experiment["status"] == "finished" and experiment["plots"] == ["per_seed"]
        runs = {t["run"] for t in experiment["trials"]}
        assert all(client.request("GET", f"runs/{r}/")["status"] == "succeeded" for r in runs)
        request = urllib.request.Request(
            f"{url}/api/experiments/{experiment['id']}/plots/per_seed/",
            headers={"Authorization": f"Token {client.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.headers["Content-Type"] == "image/png" and answer.read(4) == b"\x89PNG"
    finally:
        lab.stop()
