"""A run whose config asks for 2 processes (``train.distributed``) is trained by a worker as a torchrun group.

A real ``layerlab serve`` (SQLite, one worker): the worker claims the run and launches torchrun; rank 0
records through the worker's fenced recorder (same lease), so metrics, checkpoints and the summary
arrive as for a run of one process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from livelab import LiveLab

pytestmark = pytest.mark.e2e

GROUP = {
    "data": {"source": "spiral", "points_per_class": 100},
    "model": {"preset": "mlp", "options": {"hidden": [16]}},
    "train": {"epochs": 3, "batch_size": 32, "num_threads": 1, "distributed": {"nproc_per_node": 2}},
}


@pytest.fixture
def lab(tmp_path):
    lab = LiveLab(tmp_path / "home")
    lab.home.mkdir()
    yield lab
    lab.stop()


def test_a_worker_trains_a_two_process_run_and_records_it(lab):
    lab.cli("migrate", "--quiet")
    client = lab.user_client()
    lab.start("serve", "--port", str(lab.port), "--workers", "1", "--web-workers", "1")
    lab.wait_up(client)
    project = client.request("POST", "projects/", {"name": "ddp"})
    run = client.submit_run(project["id"], GROUP, name="two-ranks")
    done = client.wait(run["id"], timeout=180)
    assert done["status"] == "succeeded", (done["error"], lab.logs())
    summary = done["summary"]
    assert summary["distributed"]["world_size"] == 2 and summary["distributed"]["ranks_weights_identical"]
    assert done["progress"]["epoch"] == 3 and done["attempts"] == 1
    series = client.metrics(run["id"])
    assert series["train_loss"]["steps"] == [1, 2, 3]  # recorded once per epoch, by rank 0 only
    numbered = sorted(c["epoch"] for c in done["checkpoints"] if Path(c["path"]).name.startswith("epoch-"))
    assert numbered == [1, 2, 3]
