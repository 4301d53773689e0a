"""``layerlab serve`` stops every process it started on Ctrl-C, even a worker in the middle of a run;
a web server that dies is started again, the lab keeps answering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def children_of(pid: int) -> dict[int, str]:
    """``{pid: command line}`` of the processes whose parent is ``pid``."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == pid:
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_a_killed_web_server_is_started_again(tmp_path):
    lab = LiveLab(tmp_path / "home")
    lab.home.mkdir()
    lab.cli("migrate", "--quiet")
    client = lab.user_client()
    command = [sys.executable, "-m", "layerlab.cli.main", "serve", "--port", str(lab.port), "--workers", "0"]
    log = open(lab.home / "serve.log", "w")  # noqa: SIM115 (kept for the process)
    serve = subprocess.Popen(
        command, env=lab.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        lab.wait_up(client)
        (master,) = [pid for pid, line in children_of(serve.pid).items() if "gunicorn" in line]
        os.kill(master, signal.SIGKILL)  # the master dies without a word; its workers are orphaned
        deadline = time.monotonic() + 30
        while "the web server (pid" not in (lab.home / "serve.log").read_text():
            assert serve.poll() is None and time.monotonic() < deadline, (lab.home / "serve.log").read_text()
            time.sleep(0.1)
        lab.wait_up(client)  # answered by a new gunicorn
        assert serve.poll() is None, (lab.home / "serve.log").read_text()
        assert client.request("GET", "auth/me/")["username"] == "alice"
        (again,) = [pid for pid, line in children_of(serve.pid).items() if "gunicorn" in line]
        assert again != master
        assert (
            f"the web server (pid {master}) exited with signal SIGKILL"
            in (lab.home / "serve.log").read_text()
        )
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=30) == 0
    finally:
        if group_alive(serve.pid):
            os.killpg(serve.pid, signal.SIGKILL)
        serve.wait()
        log.close()
