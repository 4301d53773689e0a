"""A pipeline run through a real luigid (the central scheduler ``layerlab serve --luigid`` starts)."""

from __future__ import annotations

import copy
import socket
import subprocess
import time

import pytest

from layerlab.core.errors import LayerlabError
from layerlab.pipelines.runner import pipeline_run, scheduler_check
from layerlab.pipelines.scheduler import luigid_command
from layerlab.pipelines.spec import pipeline_parse

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def states(outcome) -> dict:
    return {row["name"]: row["state"] for row in outcome.stages}


@pytest.fixture
def luigid(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        luigid_command(host="127.0.0.1", port=port, state_path=tmp_path / "state.pickle"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            yield scheduler_check(url)
            break
        except LayerlabError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("luigid did not start")
            time.sleep(0.2)
    process.terminate()
    process.wait(timeout=10)


def test_a_pipeline_runs_reruns_and_recovers_through_luigid(people, calls, chain, luigid):
    def run_it(data):
        pipeline = pipeline_parse(copy.deepcopy(data))
        return pipeline_run(pipeline, user=people["owner"], project=people["project"], scheduler_url=luigid)

    broken = copy.deepcopy(chain)
    broken["stages"]["tuned"]["config"]["fail"] = True
    failed = run_it(broken)
    assert failed.exit_code == 1 and failed.failures[0].startswith("stage 'tuned' (finetune) failed")

    calls.clear()
    outcome = run_it(chain)  # the fix: the scheduler runs it at once, not after its retry delay
    assert outcome.exit_code == 0, outcome.failures
    assert set(states(outcome).values()) == {"done", "skipped"} and "base" not in calls

    calls.clear()
    assert run_it(chain).exit_code == 0 and calls == []


def test_a_stage_that_failed_for_an_outside_reason_reruns_at_once_on_luigid(people, luigid, monkeypatch):
    """Same file, same identity: luigid's retry delay must not hold the stage back after the fix."""
    from layerlab.core.errors import DataError
    from layerlab.pipelines import stages

    broken = {"yes": True}

    def flaky(lab, stage, inputs):
        if broken["yes"]:
            raise DataError("the share is not mounted")
        return {"fine": True}

    monkeypatch.setattr(stages, "ACTIONS", {**stages.ACTIONS, "report": flaky})
    data = {"name": "flaky", "stages": {"only": {"kind": "report", "inputs": []}}}

    def run_it():
        return pipeline_run(
            pipeline_parse(data), user=people["owner"], project=people["project"], scheduler_url=luigid
        )

    assert run_it().failures == ["stage 'only' (report) failed: the share is not mounted"]
    broken["yes"] = False
    outcome = run_it()
    assert outcome.exit_code == 0, outcome.failures
    assert states(outcome) == {"only": "done"}
