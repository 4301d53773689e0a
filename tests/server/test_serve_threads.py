"""``layerlab serve --workers 2`` on 2 cores: each run trains with 1 thread (its share), recorded in its summary."""

from __future__ import annotations

import os

import pytest
from livelab import LiveLab

pytestmark = pytest.mark.e2e


def test_serve_with_two_workers_on_two_cores_trains_each_run_with_one_thread(tmp_path):
    lab = LiveLab(tmp_path / "home")
    lab.home.mkdir()
    lab.env.pop("LAYERLAB_TRAIN_THREADS", None)
    lab.env.pop("LAYERLAB_CONCURRENT_TRAININGS", None)
    lab.cli("migrate", "--quiet")
    client = lab.user_client()
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(mine)[:2])  # serve and its workers inherit 2 cores (if there are 2)
    try:
        lab.start("serve", "--port", str(lab.port), "--workers", "2", "--web-workers", "1")
    finally:
        os.sched_setaffinity(0, mine)
    try:
        lab.wait_up(client)
        project = client.request("POST", "projects/", {"name": "threads"})
        config = {"model": {"preset": "mlp"}, "data": {"points_per_class": 50}, "train": {"epochs": 1}}
        run = client.submit_run(project["id"], config)
        done = client.wait(run["id"], timeout=120)
        assert done["status"] == "succeeded", (done["error"], lab.logs())
        assert done["summary"]["num_threads"] == 1  # 2 cores / 2 workers (a 1-core host: 1 too)
        assert done["config"]["train"].get("num_threads") is None  # what the user asked for, unchanged
    finally:
        lab.stop()
