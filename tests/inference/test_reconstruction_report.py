"""The reconstruction report (beside PCA and the noisy input), predict / evaluate / export of an
autoencoder run, and an autoencoder's encoder reused by a classifier through init_from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from layerlab.core import runlayout
from layerlab.core.errors import ConfigError
from layerlab.inference.evaluate import evaluate_run
from layerlab.inference.predict import predict_files, top_classes
from layerlab.inference.reconstruction import (
    ReconstructionReport,
    code_size,
    read_report,
    report_callbacks,
    report_for_run,
)
from layerlab.inference.trained import load_trained
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment

# A modest run on the whole digits set: already well below PCA at 8 components (0.0246; the full
# example reaches the figures of docs/autoencoders.md).
QUICK = {"epochs": 10, "batch_size": 32, "lr": 0.01, "num_threads": 1}


def digits_config(model: dict, train: dict | None = None, data: dict | None = None):
    return experiment_from_mapping(
        {
            "seed": 0,
            "data": {
                "source": "digits",
                "normalize": "none",
                "split": {"val": 0.1, "test": 0.2},
                **(data or {}),
            },
            "model": model,
            "train": {"task": "reconstruction", "loss": "mse", **QUICK, **(train or {})},
        }
    )


DENSE = {"preset": "autoencoder", "options": {"hidden": [64], "code": 8}}


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("dense") / "run"
    summary = train_experiment(
        digits_config(DENSE), run_dir, callbacks=report_callbacks(digits_config(DENSE))
    )
    return run_dir, summary


def test_the_autoencoder_beats_pca_with_as_many_components(dense_run):
    run_dir, summary = dense_run
    report = read_report(run_dir)
    assert report["code_size"] == 8 and report["denoising"] is False and report["noisy_input_mse"] is None
    assert 0.015 < report["pca_mse"] < 0.035  # PCA at 8 components on the 8x8 digits (about 0.025)
    assert report["test_mse"] < report["pca_mse"]
    assert report["ratio_to_pca"] == pytest.approx(report["test_mse"] / report["pca_mse"])
    assert report["test_mse"] == pytest.approx(summary["test_mse"], rel=1e-4)  # the best weights, clean input
    png = (run_dir / runlayout.RECONSTRUCTION_GRID).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_the_report_is_rebuilt_from_the_run_files(dense_run, tmp_path):
    run_dir, _ = dense_run
    before = read_report(run_dir)
    again = report_for_run(run_dir, cache_dir=tmp_path)
    assert again["test_mse"] == pytest.approx(before["test_mse"], rel=1e-5)
    assert again["pca_mse"] == pytest.approx(before["pca_mse"], rel=1e-6)


def test_predict_returns_reconstructions_not_top_classes(dense_run, tmp_path):
    from PIL import Image

    run_dir, _ = dense_run
    image = np.zeros((8, 8), np.uint8)
    image[2:6, 3:5] = 255
    Image.fromarray(image).save(tmp_path / "one.png")
    [result] = predict_files(run_dir, [tmp_path / "one.png"])
    assert np.asarray(result["reconstruction"]).shape == (1, 8, 8) and result["mse"] >= 0
    assert "top" not in result
    with pytest.raises(ConfigError, match="a reconstruction run: it has no classes to rank"):
        top_classes(load_trained(run_dir), torch.zeros(1, 1, 8, 8), 3)


def test_evaluate_gives_mse_per_pixel(dense_run, tmp_path):
    run_dir, summary = dense_run
    result = evaluate_run(run_dir, "digits:", device="cpu", cache_dir=tmp_path)
    assert result["task"] == "reconstruction" and result["n"] == 1797
    assert 0 < result["mse"] < 2 * summary["test_mse"] and result["mae"] > 0


def test_a_denoising_run_beats_its_noisy_input_and_reports_pca_of_it(tmp_path):
    noise = {"kind": "gaussian", "sigma": 0.3, "clip": [0, 1]}
    model = {"preset": "denoising-autoencoder", "options": {"hidden": [64], "code": 32}}
    cfg = digits_config(model, data={"noise": noise})
    train_experiment(cfg, tmp_path / "run", callbacks=[ReconstructionReport()])
    report = read_report(tmp_path / "run")
    assert report["denoising"] and report["noise"]["sigma"] == 0.3
    assert 0.04 < report["noisy_input_mse"] < 0.06  # clipped sigma-0.3 noise on the digits (about 0.051)
    assert report["test_mse"] < report["noisy_input_mse"] and report["pca_noisy_mse"] is not None
    assert report["ratio_to_noisy_input"] < 1


def test_conv_autoencoder_exports_with_parity_and_says_what_it_outputs(tmp_path):
    from layerlab.inference.export import EXTRA_FILE, export_model

    model = {"preset": "conv-autoencoder", "options": {"channels": [8, 16], "code": 8}}
    cfg = digits_config(model, train={"epochs": 1, "loss": "bce"}, data={"limit": 300})
    train_experiment(cfg, tmp_path / "run")
    out = export_model(tmp_path / "run", "torchscript", tmp_path / "model.pt")  # raises on a parity miss
    extra = {EXTRA_FILE: ""}
    loaded = torch.jit.load(str(out), _extra_files=extra)
    meta = json.loads(extra[EXTRA_FILE])
    assert meta["task"] == "reconstruction" and meta["outputs"].startswith("logits")
    assert loaded(torch.zeros(2, 1, 8, 8)).shape == (2, 1, 8, 8)
    onnx = export_model(tmp_path / "run", "onnx", tmp_path / "model.onnx")
    assert onnx.is_file()


def test_a_classifier_starts_from_the_autoencoders_encoder(dense_run, tmp_path):
    run_dir, _ = dense_run
    classifier = experiment_from_mapping(
        {
            "seed": 0,
            "data": {"source": "digits", "normalize": "none", "split": {"val": 0.1, "test": 0.2}},
            "model": {
                "layers": [
                    {"kind": "flatten"},
                    {"kind": "linear", "out": 64, "name": "enc1"},
                    {"kind": "relu"},
                    {"kind": "linear", "out": 8, "name": "code"},
                    {"kind": "relu"},
                    {"kind": "linear", "out": "classes", "name": "head"},
                ],
                "init_from": str(run_dir),
                "freeze": ["enc1", "code"],
            },
            "train": {"epochs": 8, "lr": 0.01, "num_threads": 1},
        }
    )
    summary = train_experiment(classifier, tmp_path / "clf")
    # the decoder's layers are not in the classifier; the frozen code layer is still the encoder's
    assert summary["init_from"]["loaded"] == ["code", "enc1"]
    trained_code = load_trained(run_dir).model.code.weight
    assert torch.equal(load_trained(tmp_path / "clf").model.code.weight, trained_code)
    assert summary["test_accuracy"] > 0.6  # a linear head on the frozen 8-unit code (chance: 0.1)


def test_code_size_reads_the_code_layer_of_a_summary():
    rows = {"rows": [{"name": "enc1", "output_shape": [64]}, {"name": "code", "output_shape": [8]}]}
    assert code_size(rows) == 8 and code_size(rows, "enc1") == 64 and code_size(rows, "missing") is None
