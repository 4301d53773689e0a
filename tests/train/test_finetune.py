"""Fine-tuning: init_from by name and shape, freezing, lr multipliers."""

import pytest
import torch

from layerlab.core.errors import ConfigError
from layerlab.train.checkpoint import checkpoint_load
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment


def cfg(model=None, **train):
    model = {"options": {"hidden": [16]}, **(model or {})}
    return experiment_from_mapping({"model": model, "train": {"epochs": 2, "batch_size": 16, **train}})


def test_init_from_loads_matching_layers_and_reports_the_rest(standins, tmp_path):
    train_experiment(cfg(), tmp_path / "base")
    base = checkpoint_load(tmp_path / "base" / "checkpoints" / "best.ckpt")["model"]
    model = {"init_from": str(tmp_path / "base"), "freeze": ["fc1"], "options": {"hidden": [16]}}
    summary = train_experiment(cfg(model, epochs=2), tmp_path / "tuned")
    assert summary["init_from"]["loaded"] == ["fc1", "out"] and summary["init_from"]["skipped"] == []
    tuned = checkpoint_load(tmp_path / "tuned" / "checkpoints" / "last.ckpt")["model"]
    assert torch.equal(tuned["fc1.weight"], base["fc1.weight"])  # frozen: unchanged
    assert not torch.equal(tuned["out.weight"], base["out.weight"])
    assert summary["frozen"] == ["fc1.weight", "fc1.bias"]


def test_shape_mismatch_is_skipped_with_a_reason(standins, tmp_path):
    train_experiment(cfg(), tmp_path / "base")
    summary = train_experiment(
        cfg({"init_from": str(tmp_path / "base"), "options": {"hidden": [8]}}), tmp_path / "tuned"
    )
    assert summary["init_from"]["loaded"] == []
    assert {s["layer"] for s in summary["init_from"]["skipped"]} == {"fc1", "out"}
    assert "shape" in summary["init_from"]["skipped"][0]["reason"]


def test_init_skip_keeps_a_matching_head_fresh_and_an_unknown_name_is_refused(standins, tmp_path):
    train_experiment(cfg(), tmp_path / "base")
    model = {"init_from": str(tmp_path / "base"), "init_skip": ["out"], "options": {"hidden": [16]}}
    summary = train_experiment(cfg(model, epochs=1), tmp_path / "tuned")
    assert summary["init_from"]["loaded"] == ["fc1"]
    assert summary["init_from"]["skipped"] == [{"layer": "out", "reason": "model.init_skip"}]
    with pytest.raises(ConfigError, match="model.init_skip: no layer matches 'head'"):
        train_experiment(cfg({**model, "init_skip": ["head"]}), tmp_path / "bad")


def test_lr_multipliers_and_pretrained_factor_make_param_groups(standins, tmp_path):
    train_experiment(cfg(), tmp_path / "base")
    model = {
        "init_from": str(tmp_path / "base" / "checkpoints" / "last.ckpt"),
        "pretrained_lr_multiplier": 0.1,
        "lr_multipliers": {"out": 2.0},
    }
    train_experiment(
        cfg(model, lr=0.01, schedule={"kind": "step", "step_size": 1, "gamma": 0.5}), tmp_path / "t"
    )
    groups = checkpoint_load(tmp_path / "t" / "checkpoints" / "last.ckpt")["optimizer"]["param_groups"]
    by_factor = {g["lr_factor"]: g["lr"] for g in groups}
    assert by_factor == pytest.approx({0.1: 0.01 * 0.1 * 0.25, 2.0: 0.01 * 2.0 * 0.25})


def test_unknown_freeze_prefix_suggests_a_layer(standins, tmp_path):
    with pytest.raises(ConfigError, match="no layer matches 'fc9'.*did you mean"):
        train_experiment(cfg({"freeze": ["fc9"]}), tmp_path)


def test_freezing_everything_is_refused(standins, tmp_path):
    with pytest.raises(ConfigError, match="every layer is frozen"):
        train_experiment(cfg({"freeze": ["fc", "out"]}), tmp_path)
