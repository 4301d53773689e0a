"""train.task: the config checks of each task, regression end to end, data.noise's checks and draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerlab.core.errors import ConfigError, DataError
from layerlab.data.config import NoiseConfig
from layerlab.data.noise import corrupt
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment
from layerlab.train.tasks import Task, code_penalty


def config(train: dict, data: dict | None = None, model: dict | None = None):
    return experiment_from_mapping(
        {
            "data": data or {"source": "spiral", "points_per_class": 40},
            "model": model or {"preset": "mlp", "options": {"hidden": [8]}},
            "train": {"epochs": 2, "batch_size": 32, "num_threads": 1, **train},
        }
    )


@pytest.mark.parametrize(
    ("train", "words"),
    [
        ({"task": "regression"}, "loss 'cross_entropy' does not fit a regression task"),
        ({"task": "reconstruction", "loss": "huber"}, "loss 'huber' does not fit a reconstruction"),
        ({"task": "classification", "loss": "bce"}, "loss 'bce' does not fit a classification"),
        (
            {"task": "regression", "loss": "mse", "early_stopping": {"metric": "val_accuracy"}},
            "a regression task has no accuracy to monitor",
        ),
        ({"task": "reconstruction", "loss": "mse", "code_l1": {"weight": 0.1}}, "code_l1 needs the name"),
        (
            {"task": "reconstruction", "loss": "mse", "code_l1": {"layer": "c", "weight": -1}},
            "weight must be in (0",
        ),
        ({"task": "ranking"}, "'ranking' is not allowed"),
    ],
)
def test_task_config_mistakes_are_one_clear_line(train, words):
    with pytest.raises(ConfigError) as caught:
        config(train)
    assert words in caught.value.one_line()


@pytest.mark.parametrize(
    ("noise", "words"),
    [
        ({"kind": "gaussian", "sigma": -0.1}, "sigma must be in"),
        ({"kind": "gaussian", "sigma": float("nan")}, "finite"),
        ({"kind": "masking", "fraction": 1.5}, "fraction must be in"),
        ({"kind": "masking", "fraction": 0}, "fraction must be in"),
        ({"kind": "gaussian", "clip": [1, 0]}, "clip must be [low, high]"),
        ({"kind": "blur"}, "'blur' is not allowed"),
        ({"kind": "gaussian", "sigmas": 0.3}, "sigmas"),
    ],
)
def test_noise_mistakes_are_one_clear_line(noise, words):
    with pytest.raises(ConfigError) as caught:
        config({}, data={"source": "digits", "noise": noise})
    assert words in caught.value.one_line()


def test_a_number_for_noise_is_still_spirals_angle_noise():
    assert config({}, data={"source": "spiral", "noise": 0.3}).data.noise == 0.3


def test_augmenting_a_reconstruction_is_refused_before_any_data(tmp_path):
    cfg = config(
        {"task": "reconstruction", "loss": "mse"}, data={"source": "digits", "augment": {"shift": 1}}
    )
    with pytest.raises(ConfigError, match="data.augment transforms the input only"):
        train_experiment(cfg, tmp_path / "run")


def test_corruptions_change_what_they_should_and_follow_the_seed():
    x = torch.full((64, 1, 8, 8), 0.5)
    torch.manual_seed(3)
    a = corrupt(x, NoiseConfig(kind="gaussian", sigma=0.3, clip=[0.0, 1.0]))
    torch.manual_seed(3)
    b = corrupt(x, NoiseConfig(kind="gaussian", sigma=0.3, clip=[0.0, 1.0]))
    assert torch.equal(a, b) and not torch.equal(a, x) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(x, torch.full_like(x, 0.5))  # the batch itself is never written
    masked = corrupt(x, NoiseConfig(kind="masking", fraction=0.25))
    share = float((masked == 0).float().mean())
    assert 0.2 < share < 0.3 and set(masked.unique().tolist()) == {0.0, 0.5}
    salted = corrupt(x, NoiseConfig(kind="salt_pepper", fraction=0.5, clip=[0.0, 1.0]))
    assert set(salted.unique().tolist()) == {0.0, 0.5, 1.0}
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    state = torch.get_rng_state()
    assert torch.equal(corrupt(x, NoiseConfig(), g1), corrupt(x, NoiseConfig(), g2))
    assert torch.equal(torch.get_rng_state(), state)  # a generator leaves the global stream alone


def values_npz(path, n=240, k=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x @ rng.normal(size=(4, k)) + 0.01 * rng.normal(size=(n, k))).astype(np.float32)
    np.savez(path, X=x, y=y)
    return path


def test_regression_learns_float_targets_without_accuracy(tmp_path):
    data = {"source": "npz", "path": str(values_npz(tmp_path / "v.npz"))}
    cfg = config({"task": "regression", "loss": "mse", "epochs": 15, "lr": 0.02}, data=data)
    summary = train_experiment(cfg, tmp_path / "run", cache_dir=tmp_path / "cache")
    assert summary["task"] == "regression" and summary["classes"] == ["y0", "y1"]
    assert summary["test_accuracy"] is None and "confusion_matrix" not in summary
    assert summary["test_mse"] < 0.5 * summary_first_val(tmp_path / "run")  # it learned
    assert summary["test_mae"] > 0 and summary["verdict"].startswith("train loss ")
    assert not (tmp_path / "run" / "test_predictions.npz").exists()


def summary_first_val(run_dir) -> float:
    import json

    first = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert first["train_accuracy"] is None and first["val_accuracy"] is None and "val_mae" in first
    return first["val_mse"]


@pytest.mark.parametrize("loss", ["l1", "huber"])
def test_regression_takes_l1_and_huber(tmp_path, loss):
    data = {"source": "npz", "path": str(values_npz(tmp_path / "v.npz", n=120))}
    summary = train_experiment(
        config({"task": "regression", "loss": loss}, data=data), tmp_path / "run", cache_dir=tmp_path / "c"
    )
    assert summary["status"] == "completed" and summary["test_mse"] is not None


def test_regression_on_class_labels_and_a_wrong_output_are_one_line(tmp_path):
    with pytest.raises(DataError, match="gives class labels, not values"):
        train_experiment(config({"task": "regression", "loss": "mse"}), tmp_path / "a")
    data = {"source": "npz", "path": str(values_npz(tmp_path / "v.npz", n=60, k=3))}
    layers = {"layers": [{"kind": "linear", "out": 2}]}
    with pytest.raises(ConfigError, match=r"output is \[2\] but a regression task needs \[3\]"):
        train_experiment(
            config({"task": "regression", "loss": "mse"}, data=data, model=layers),
            tmp_path / "b",
            cache_dir=tmp_path / "c",
        )


def test_classification_of_float_values_says_to_regress(tmp_path):
    data = {"source": "npz", "path": str(values_npz(tmp_path / "v.npz", n=60))}
    with pytest.raises(DataError, match="set train.task: regression"):
        train_experiment(config({}, data=data), tmp_path / "run", cache_dir=tmp_path / "c")


def test_code_penalty_reads_the_named_layer_and_refuses_a_missing_one():
    from layerlab.train.config import CodeL1Config

    model = torch.nn.Sequential()
    model.add_module("code", torch.nn.Linear(3, 4))
    model.add_module("out", torch.nn.Linear(4, 3))
    penalty = code_penalty(model, CodeL1Config(layer="code", weight=0.5))
    x = torch.ones(2, 3)
    h = model.code(x)
    model(x)
    assert torch.allclose(penalty(), 0.5 * h.abs().mean())
    with pytest.raises(ConfigError, match="no layer named 'cod'") as caught:
        code_penalty(model, CodeL1Config(layer="cod", weight=0.5))
    assert "code, out" in caught.value.one_line()


def test_bce_outputs_are_the_sigmoid_of_logits():
    task = Task("reconstruction", "bce")
    assert torch.allclose(task.output(torch.zeros(1, 2)), torch.full((1, 2), 0.5))
    assert torch.equal(Task("reconstruction", "mse").output(torch.zeros(1, 2)), torch.zeros(1, 2))
