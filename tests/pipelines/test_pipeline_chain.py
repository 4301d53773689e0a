"""The real chain (dataset, train, evaluate, export onnx, report) with the engine, in process: marked slow."""

from __future__ import annotations

import copy

import pytest

from layerlab.apps.journal.models import Entry
from layerlab.apps.pipelines.models import Pipeline, PipelineStage
from layerlab.apps.runs.models import Run
from layerlab.pipelines.runner import pipeline_run
from layerlab.pipelines.spec import pipeline_parse

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TINY = {
    "name": "chain",
    "stages": {
        "spiral": {"kind": "dataset", "data": {"source": "spiral", "points_per_class": 40}},
        "base": {
            "kind": "train",
            "dataset": "spiral",
            "config": {"model": {"preset": "mlp"}, "train": {"epochs": 2, "lr": 0.01, "batch_size": 32}},
        },
        "holdout": {
            "kind": "evaluate",
            "run": "base",
            "data": {"source": "spiral", "points_per_class": 20, "noise": 0.3},
        },
        "onnx": {"kind": "export", "run": "base", "format": "onnx"},
        "summary": {"kind": "report", "inputs": ["base", "holdout", "onnx"]},
    },
}


def run_it(people, data):
    return pipeline_run(
        pipeline_parse(copy.deepcopy(data)), user=people["owner"], project=people["project"], local=True
    )


def states(outcome) -> dict:
    return {row["name"]: row["state"] for row in outcome.stages}


def test_run_rerun_and_change(people):
    first = run_it(people, TINY)
    assert first.exit_code == 0, first.failures
    assert set(states(first).values()) == {"done"}
    assert Run.objects.filter(status=Run.Status.SUCCEEDED).count() == 1
    stage = PipelineStage.objects.get(name="holdout")
    assert stage.run_id is not None and "accuracy" in stage.result["metrics"]
    assert Entry.objects.filter(title__startswith="Pipeline chain").count() == 1

    again = run_it(people, TINY)
    assert again.exit_code == 0
    assert set(states(again).values()) == {"skipped"}
    assert Run.objects.count() == 1  # nothing trained again

    changed = copy.deepcopy(TINY)
    changed["stages"]["base"]["config"]["train"]["lr"] = 0.02
    third = run_it(people, changed)
    assert third.exit_code == 0, third.failures
    assert states(third) == {
        "spiral": "skipped",
        "base": "done",
        "holdout": "done",
        "onnx": "done",
        "summary": "done",
    }
    assert Run.objects.count() == 2
    assert Pipeline.objects.count() == 1
