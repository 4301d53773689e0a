"""``layerlab pipeline``: bad files and an unanswering scheduler are one line and a non-zero exit, nothing created."""

from __future__ import annotations

import socket

import pytest
import yaml

from layerlab.apps.pipelines.models import Pipeline
from layerlab.apps.projects.models import Project
from layerlab.cli.main import main
from layerlab.pipelines import stages

pytestmark = pytest.mark.django_db(transaction=True)

GOOD = {
    "name": "tiny",
    "project": "pipes",
    "stages": {
        "spiral": {"kind": "dataset", "data": {"source": "spiral"}},
        "summary": {"kind": "report", "inputs": ["spiral"]},
    },
}


def write(tmp_path, data) -> str:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def nothing_created():
    return not Pipeline.objects.exists() and not Project.objects.filter(name="pipes").exists()


@pytest.mark.parametrize(
    ("stages_", "expected"),
    [
        ({"a": {"kind": "report", "inputs": ["nope"]}}, "stages.a.inputs: depends on unknown stage 'nope'"),
        (
            {"a": {"kind": "report", "inputs": ["b"]}, "b": {"kind": "report", "inputs": ["a"]}},
            "circular dependency: a -> b -> a",
        ),
    ],
)
def test_unknown_or_circular_stage_is_one_line_exit_2(tmp_path, capsys, lab_home, stages_, expected):
    code = main(["pipeline", "run", write(tmp_path, {"name": "bad", "project": "pipes", "stages": stages_})])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and expected in err
    assert nothing_created()


def test_a_scheduler_that_does_not_answer_is_one_line(tmp_path, capsys, lab_home):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = main(["pipeline", "run", write(tmp_path, GOOD), "--scheduler-url", f"http://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 7
    assert err.count("\n") == 1 and f"the scheduler at http://127.0.0.1:{port} does not answer" in err
    assert nothing_created()


def test_run_then_show(tmp_path, capsys, lab_home, monkeypatch):
    monkeypatch.setattr(
        stages, "ACTIONS", {**stages.ACTIONS, "dataset": lambda lab, stage, inputs: {"note": "stub"}}
    )
    monkeypatch.setenv("LAYERLAB_USER", "ada")
    path = write(tmp_path, GOOD)
    assert main(["pipeline", "run", path]) == 0
    out = capsys.readouterr().out
    assert "spiral" in out and "done" in out
    assert Pipeline.objects.get().project.name == "pipes"
    assert main(["pipeline", "show", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.rstrip().endswith("done") or "done <-" in line for line in lines)
