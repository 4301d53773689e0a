"""End to end with the real layerlab.nn and layerlab.data (tiny sizes)."""

from pathlib import Path

import pytest
import torch

from layerlab.inference.evaluate import evaluate_run
from layerlab.inference.export import export_model
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment

SIGN = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "sign-language-digits" / "Dataset"


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_spiral_mlp_learns_the_spiral(tmp_path):
    cfg = experiment_from_mapping(
        {"model": {"preset": "mlp"}, "train": {"epochs": 60, "batch_size": 32, "lr": 0.01}}
    )
    summary = train_experiment(cfg, tmp_path)
    assert summary["train_accuracy"] >= 0.95, summary["verdict"]


def test_digits_lenet_runs_and_fine_tunes_by_layer_name(tmp_path):
    base = {"data": {"source": "digits", "limit": 400}, "model": {"preset": "lenet5"}, "train": {"epochs": 2}}
    first = train_experiment(experiment_from_mapping(base), tmp_path / "a")
    assert first["test_accuracy"] is not None and len(first["confusion_matrix"]) == 10
    tuned = dict(base, model={"preset": "lenet5", "init_from": str(tmp_path / "a"), "freeze": ["conv"]})
    summary = train_experiment(experiment_from_mapping(tuned), tmp_path / "b")
    assert summary["init_from"]["loaded"] and not summary["init_from"]["skipped"]
    assert summary["trainable_parameters"] < summary["parameters"]
    result = evaluate_run(tmp_path / "b", "digits:")
    assert result["n"] == 1797 and 0.0 <= result["accuracy"] <= 1.0


def test_dynamicnet_exports_to_onnx_at_its_eval_depth(tmp_path):
    cfg = experiment_from_mapping({"model": {"preset": "dynamicnet"}, "train": {"epochs": 1}})
    train_experiment(cfg, tmp_path)
    assert export_model(tmp_path, "onnx").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.skipif(not SIGN.is_dir(), reason=f"sign language digits not found at {SIGN}")
def test_sign_language_trains(tmp_path):
    cfg = experiment_from_mapping(
        {
            "data": {
                "source": "imagefolder",
                "path": str(SIGN),
                "size": [64, 64],
                "channels": 1,
                "split": {"method": "ordered"},
            },
            "model": {"preset": "tennet"},
            "train": {"epochs": 2},
        }
    )
    summary = train_experiment(cfg, tmp_path)
    assert summary["test_accuracy"] > 0.3


def test_a_frozen_batchnorm_keeps_its_running_statistics(tmp_path):
    layers = [
        {"kind": "linear", "out": 16, "name": "fc1"},
        {"kind": "batchnorm1d", "name": "bn"},
        {"kind": "relu"},
        {"kind": "linear", "out": "classes", "name": "out"},
    ]
    base = {"data": {"points_per_class": 30}, "model": {"layers": layers}, "train": {"epochs": 1}}
    train_experiment(experiment_from_mapping(base), tmp_path / "a")
    tuned = {**base, "model": {"layers": layers, "init_from": str(tmp_path / "a"), "freeze": ["bn"]}}
    train_experiment(experiment_from_mapping(tuned), tmp_path / "b")
    before = torch.load(tmp_path / "a" / "checkpoints" / "best.ckpt", weights_only=True)["model"]
    after = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)["model"]
    for key in ("bn.running_mean", "bn.running_var", "bn.num_batches_tracked", "bn.weight"):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["fc1.weight"], after["fc1.weight"])
