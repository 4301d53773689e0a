"""Real lab processes for end-to-end tests: migrate, users, ``layerlab serve`` / ``layerlab worker``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from layerlab.client import ClientError, LabClient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveLab:
    """A lab home (SQLite, or PostgreSQL via ``database_url``) and the processes started on it."""

    def __init__(self, home: Path, database_url: str = ""):
        self.home = home
        self.env = {
            **os.environ,
            "LAYERLAB_HOME": str(home),
            "DATABASE_URL": database_url,
            "PYTHONUNBUFFERED": "1",
            "LAYERLAB_HEARTBEAT_SECONDS": "1",
            "LAYERLAB_STALE_SECONDS": "30",
            "DJANGO_SETTINGS_MODULE": "layerlab.server.settings",
        }
        self.processes: list[subprocess.Popen] = []
        self.port = free_port()

    def cli(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [sys.executable, "-m", "layerlab.cli.main", *args],
            input=stdin, env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def start(self, *args: str) -> subprocess.Popen:
        log = open(self.home / f"proc-{len(self.processes)}.log", "w")  # noqa: SIM115 (kept for the process)
        process = subprocess.Popen(
            [sys.executable, "-m", "layerlab.cli.main", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def user_client(self, name: str = "alice") -> LabClient:
        self.cli("createuser", name, stdin="Long-enough-pass-42\n")
        return LabClient(f"http://127.0.0.1:{self.port}", self.cli("token", name), timeout=30)

    def wait_up(self, client: LabClient, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.request("GET", "auth/me/")
                return
            except ClientError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.home.glob("proc-*.log")))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
