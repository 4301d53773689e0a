"""Shared fixtures of the pipeline tests: a chain of every stage kind, with the stages' work stubbed."""

from __future__ import annotations

import copy

import pytest

from layerlab.apps.runs.models import Run
from layerlab.core.errors import DataError
from layerlab.pipelines import stages

CHAIN = {
    "name": "chain",
    "stages": {
        "spiral": {"kind": "dataset", "data": {"source": "spiral"}},
        "base": {"kind": "train", "dataset": "spiral", "config": {"train": {"epochs": 2, "lr": 0.01}}},
        "tuned": {"kind": "finetune", "from": "base", "config": {"train": {"lr": 0.001}}},
        "holdout": {"kind": "evaluate", "run": "tuned", "data": {"source": "spiral", "noise": 0.3}},
        "onnx": {"kind": "export", "run": "tuned"},
        "summary": {"kind": "report", "inputs": ["base", "holdout", "onnx"]},
    },
}


@pytest.fixture
def chain():
    """A pipeline mapping with one stage of each kind but sweep (a fresh copy each time)."""
    return copy.deepcopy(CHAIN)


@pytest.fixture
def calls(monkeypatch, people):
    """Each stage's work replaced by a fake that records its call and makes a succeeded run for training stages."""
    made: list[str] = []
    project = people["project"]

    def fake(kind):
        def action(lab, stage, inputs):
            made.append(stage.name)
            if stage.options.get("config", {}).get("fail"):
                raise DataError("the data ran out", where="data")
            if kind in ("train", "finetune"):
                run = Run.objects.create(project=project, name=stage.name, status=Run.Status.SUCCEEDED)
                return {"run": run.id, "metrics": {"val_accuracy": 0.9}}
            if kind in ("evaluate", "export"):
                return {"run": inputs["run"]["run"], "metrics": {"accuracy": 0.8}}
            return {"seen": sorted(inputs.get("inputs", {}))}

        return action

    monkeypatch.setattr(stages, "ACTIONS", {kind: fake(kind) for kind in stages.ACTIONS})
    return made
