"""The reconstruction task: autoencoders on the digits, denoising with exact resume, bce, code_l1."""

from __future__ import annotations

import json

import pytest
import torch

from layerlab.core.errors import ConfigError, DataError
from layerlab.train.callbacks import Callback
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment

NOISE = {"kind": "gaussian", "sigma": 0.3, "clip": [0, 1]}


def config(train: dict | None = None, data: dict | None = None, model: dict | None = None):
    return experiment_from_mapping(
        {
            "seed": 3,
            "data": {"source": "digits", "normalize": "none", "limit": 300, **(data or {})},
            "model": model or {"preset": "autoencoder", "options": {"hidden": [32], "code": 8}},
            "train": {
                "task": "reconstruction",
                "loss": "mse",
                "epochs": 3,
                "batch_size": 32,
                "num_threads": 1,
                **(train or {}),
            },
        }
    )


class Crash(Callback):
    def on_epoch_end(self, trainer, epoch, metrics):
        if epoch == 3:
            raise RuntimeError("crash")


def test_an_autoencoder_learns_its_input_and_reports_mse_per_pixel(tmp_path):
    summary = train_experiment(config({"epochs": 4, "lr": 0.005}), tmp_path / "run")
    assert summary["task"] == "reconstruction" and summary["test_accuracy"] is None
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val_mse"] < rows[0]["val_mse"]  # it learned
    assert summary["test_mse"] == pytest.approx(summary["test_loss"], rel=1e-5)  # mse loss = mse per pixel
    assert 0 < summary["test_mse"] < 0.2 and summary["test_mae"] > 0
    assert "confusion_matrix" not in summary and not (tmp_path / "run" / "test_predictions.npz").exists()


def test_resume_of_a_denoising_run_is_exact(tmp_path):
    cfg = config({"epochs": 5, "checkpoint_every": 2}, data={"noise": NOISE})
    whole = train_experiment(cfg, tmp_path / "whole")
    with pytest.raises(RuntimeError):
        train_experiment(cfg, tmp_path / "cut", callbacks=[Crash()])
    resumed = train_experiment(None, tmp_path / "cut", resume=True)
    assert resumed["weights_sha256"] == whole["weights_sha256"]
    clean = train_experiment(config({"epochs": 5, "checkpoint_every": 2}), tmp_path / "clean")
    assert clean["weights_sha256"] != whole["weights_sha256"]  # the noise changed the training


@pytest.mark.parametrize("kind", ["masking", "salt_pepper"])
def test_other_corruptions_train(tmp_path, kind):
    summary = train_experiment(
        config({"epochs": 1}, data={"noise": {"kind": kind, "fraction": 0.2}}), tmp_path / "run"
    )
    assert summary["status"] == "completed" and summary["test_mse"] is not None


def test_bce_learns_logits_of_pixels_in_0_1_and_refuses_standardized_ones(tmp_path):
    summary = train_experiment(config({"loss": "bce", "epochs": 2}), tmp_path / "ok")
    assert summary["test_mse"] < 0.25  # the sigmoid's reconstruction, not the logits
    with pytest.raises(DataError, match=r"loss bce learns values in \[0, 1\]"):
        train_experiment(config({"loss": "bce"}, data={"normalize": "standard"}), tmp_path / "refused")


def test_a_conv_autoencoder_trains_through_transposed_convolutions(tmp_path):
    model = {"preset": "conv-autoencoder", "options": {"channels": [8, 16], "code": 8}}
    summary = train_experiment(config({"epochs": 1}, model=model), tmp_path / "run")
    assert summary["status"] == "completed" and summary["test_mse"] is not None


def test_the_code_penalty_makes_codes_sparser(tmp_path):
    model = {"preset": "sparse-autoencoder", "options": {"code": 96}}

    def mean_code(run_dir) -> float:
        from layerlab.inference.trained import load_trained

        trained = load_trained(run_dir)
        x = torch.rand(64, 1, 8, 8)
        seen = {}
        trained.model.code.register_forward_hook(lambda m, i, o: seen.update(h=o))
        trained.model(x)
        return float(seen["h"].detach().abs().mean())

    plain = train_experiment(config({"epochs": 3}, model=model), tmp_path / "plain")
    sparse = train_experiment(
        config({"epochs": 3, "code_l1": {"layer": "code", "weight": 1.0}}, model=model), tmp_path / "sparse"
    )
    assert plain["status"] == sparse["status"] == "completed"
    assert mean_code(tmp_path / "sparse") < 0.5 * mean_code(tmp_path / "plain")


def test_a_missing_code_layer_and_a_wrong_output_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no layer named 'bottleneck'"):
        train_experiment(config({"code_l1": {"layer": "bottleneck", "weight": 0.1}}), tmp_path / "a")
    layers = {"layers": [{"kind": "flatten"}, {"kind": "linear", "out": 10}]}
    with pytest.raises(ConfigError, match=r"output is \[10\] but a reconstruction task needs \[1, 8, 8\]"):
        train_experiment(config(model=layers), tmp_path / "b")


def test_out_classes_means_the_input_values_for_a_reconstruction(tmp_path):
    layers = {
        "layers": [
            {"kind": "flatten"},
            {"kind": "linear", "out": 8, "name": "code"},
            {"kind": "linear", "out": "classes"},
            {"kind": "unflatten", "shape": [1, 8, 8]},
        ]
    }
    summary = train_experiment(config({"epochs": 1}, model=layers), tmp_path / "run")
    assert summary["status"] == "completed"
