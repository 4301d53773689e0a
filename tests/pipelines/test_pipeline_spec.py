"""Pipeline files: stages, inputs, order and identities; bad files refused in one line (no Django, no Luigi)."""

from __future__ import annotations

import pytest

from layerlab.core.errors import ConfigError
from layerlab.pipelines.spec import pipeline_parse

BASE = {
    "name": "chain",
    "stages": {
        "spiral": {"kind": "dataset", "data": {"source": "spiral", "size": 200}},
        "base": {"kind": "train", "dataset": "spiral", "config": {"train": {"epochs": 2, "lr": 0.01}}},
        "holdout": {"kind": "evaluate", "run": "base", "data": {"source": "spiral", "size": 50}},
        "onnx": {"kind": "export", "run": "base", "format": "onnx"},
        "summary": {"kind": "report", "inputs": ["holdout", "onnx"]},
    },
}


def copy_of(base=BASE):
    import copy

    return copy.deepcopy(base)


def test_inputs_come_first_and_identities_are_stable():
    one, two = pipeline_parse(copy_of()), pipeline_parse(copy_of())
    names = list(one.stages)
    assert names.index("spiral") < names.index("base") < names.index("holdout") < names.index("summary")
    assert {n: s.identity for n, s in one.stages.items()} == {n: s.identity for n, s in two.stages.items()}


def test_a_change_changes_the_stage_and_what_depends_on_it_only():
    before = pipeline_parse(copy_of())
    changed = copy_of()
    changed["stages"]["base"]["config"]["train"]["lr"] = 0.02
    after = pipeline_parse(changed)
    moved = {n for n in before.stages if before.stages[n].identity != after.stages[n].identity}
    assert moved == {"base", "holdout", "onnx", "summary"}


def test_unknown_stage_is_one_line_with_a_suggestion():
    bad = copy_of()
    bad["stages"]["holdout"]["run"] = "bsae"
    with pytest.raises(ConfigError) as info:
        pipeline_parse(bad)
    assert info.value.exit_code == 2
    assert "unknown stage 'bsae'" in str(info.value) and "did you mean 'base'" in str(info.value)
    assert "\n" not in str(info.value)


def test_circular_dependency_is_named():
    bad = copy_of()
    bad["stages"]["a"] = {"kind": "report", "inputs": ["b"]}
    bad["stages"]["b"] = {"kind": "report", "inputs": ["a"]}
    with pytest.raises(ConfigError, match=r"circular dependency: a -> b -> a"):
        pipeline_parse(bad)


def test_an_input_of_the_wrong_kind_and_unknown_keys_are_refused():
    bad = copy_of()
    bad["stages"]["onnx"]["run"] = "spiral"
    with pytest.raises(ConfigError, match="is a dataset stage"):
        pipeline_parse(bad)
    bad = copy_of()
    bad["stages"]["base"]["confg"] = {}
    with pytest.raises(ConfigError, match="did you mean 'config'"):
        pipeline_parse(bad)


def test_the_shipped_example_is_a_valid_pipeline():
    from pathlib import Path

    from layerlab.pipelines.spec import pipeline_load

    example = Path(__file__).resolve().parents[2] / "examples" / "pipelines" / "spiral-chain.yaml"
    pipeline = pipeline_load(example)
    assert [s.kind for s in pipeline.stages.values()] == [
        "dataset",
        "train",
        "finetune",
        "evaluate",
        "export",
        "report",
    ]


def test_an_unexpected_error_is_told_without_its_text():
    """Its text may name server files, and the dashboard shows the line to the project's viewers."""
    from layerlab.core.errors import DataError
    from layerlab.pipelines.tasks import failure_line

    line = failure_line(FileNotFoundError("/srv/lab/secret.npz"))
    assert "/srv" not in line and "FileNotFoundError" in line
    assert failure_line(DataError("no classes", where="data")) == "data: no classes"
