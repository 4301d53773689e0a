"""Schemathesis against the live lab: every operation of the OpenAPI schema, no response is a 5xx.

A real ``layerlab serve`` (gunicorn) on SQLite, a signed-in user with a project, a dataset, a
network, a run and a journal entry to aim at; schemathesis (pinned in the test extras) reads
``/api/schema/`` and sends a bounded number of generated requests to each operation. The full
size (more examples per operation) runs under ``make bench``-style environments through
``LAYERLAB_SCHEMATHESIS_EXAMPLES``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from livelab import LiveLab

pytestmark = pytest.mark.e2e

EXAMPLES = os.environ.get("LAYERLAB_SCHEMATHESIS_EXAMPLES", "8")


@pytest.fixture
def lab(tmp_path):
    lab = LiveLab(tmp_path / "home")
    lab.home.mkdir()
    # The fuzzer's own request rate must not be what it measures: a generous user throttle.
    lab.env["LAYERLAB_THROTTLE_USER"] = "100000/min"
    yield lab
    lab.stop()


def schemathesis_command() -> list[str]:
    script = Path(sys.executable).with_name("schemathesis")
    if script.exists():
        return [str(script)]
    found = shutil.which("schemathesis")
    if not found:
        pytest.fail("schemathesis is not installed: `make test` installs it with the dev extras")
    return [found]


def test_no_operation_answers_a_server_error(lab, tmp_path):
    lab.cli("migrate", "--quiet")
    client = lab.user_client()
    lab.start("serve", "--port", str(lab.port), "--workers", "0", "--web-workers", "1")
    lab.wait_up(client)
    project = client.request("POST", "projects/", {"name": "fuzzed"})
    client.request("POST", "datasets/", {"project": project["id"], "name": "d", "data": {"source": "spiral"}})
    client.request(
        "POST",
        "networks/",
        {"project": project["id"], "name": "n", "spec": {"layers": [{"kind": "linear", "out": 2}]}},
    )
    client.submit_run(project["id"], {"model": {"preset": "mlp"}, "train": {"epochs": 1}}, name="r")
    client.request("POST", "journal/", {"project": project["id"], "title": "note"})
    token = lab.cli("token", "alice")
    report = tmp_path / "report"
    done = subprocess.run(
        [
            *schemathesis_command(), "run", f"http://127.0.0.1:{lab.port}/api/schema/",
            "--checks", "not_a_server_error",
            "--max-examples", EXAMPLES,
            "--phases", "examples,coverage,fuzzing",
            "--workers", "1",
            "--request-timeout", "30",
            "--header", f"Authorization: Token {token}",
            "--suppress-health-check", "all",
            "--seed", "7",
            "--no-color",
        ],
        capture_output=True, text=True, timeout=900, env={**os.environ, "SCHEMATHESIS_HOOKS": ""}, cwd=tmp_path,
    )  # fmt: skip
    report.write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:] + lab.logs()[-3000:]
