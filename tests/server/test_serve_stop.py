"""``layerlab serve`` stops every process it started on Ctrl-C, even a worker in the middle of a run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from livelab import LiveLab

pytestmark = pytest.mark.e2e


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_stops_the_web_server_and_every_worker_at_once(tmp_path):
    lab = LiveLab(tmp_path / "home")
    lab.home.mkdir()
    lab.cli("migrate", "--quiet")
    client = lab.user_client()
    command = [sys.executable, "-m", "layerlab.cli.main", "serve", "--port", str(lab.port), "--workers", "2"]
    log = open(lab.home / "serve.log", "w")  # noqa: SIM115 (kept for the process)
    # Its own session: the test can look for any process left in the group afterwards.
    serve = subprocess.Popen(
        command, env=lab.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        lab.wait_up(client)
        project = client.request("POST", "projects/", {"name": "stop"})
        config = {"model": {"preset": "mlp"}, "train": {"epochs": 1000, "batch_size": 8, "num_threads": 1}}
        run = client.submit_run(project["id"], config)
        deadline = time.monotonic() + 60
        while client.run(run["id"])["progress"]["epoch"] < 1:
            assert time.monotonic() < deadline, (lab.home / "serve.log").read_text()
            time.sleep(0.05)
        # Only serve itself is signalled (a terminal's Ctrl-C would reach its children too): it must
        # stop them, including a worker in the middle of a long run.
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=30) == 0
        deadline = time.monotonic() + 15
        while group_alive(serve.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not group_alive(serve.pid), "a process started by serve outlived it"
        # The access log is a file under LAYERLAB_HOME, not the terminal.
        access = (lab.home / "logs" / "access.log").read_text()
        assert "GET /api/auth/me/" in access
        assert "GET /api/auth/me/" not in (lab.home / "serve.log").read_text()
    finally:
        if group_alive(serve.pid):
            os.killpg(serve.pid, signal.SIGKILL)
        serve.wait()
        log.close()
