"""``layerlab train`` of a reconstruction run writes its report; predict and evaluate speak of MSE."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from layerlab.cli.main import main
from layerlab.core import runlayout

DENOISING = {
    "seed": 1,
    "data": {
        "source": "digits",
        "normalize": "none",
        "limit": 200,
        "noise": {"kind": "gaussian", "sigma": 0.3},
    },
    "model": {"preset": "denoising-autoencoder", "options": {"hidden": [16], "code": 8}},
    "train": {"task": "reconstruction", "loss": "mse", "epochs": 1, "num_threads": 1},
}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LAYERLAB_RECORD", "0")
    torch.set_num_threads(1)


def test_train_writes_the_report_and_evaluate_prints_mse(tmp_path, capsys):
    config = tmp_path / "dae.yaml"
    config.write_text(yaml.safe_dump(DENOISING))
    run_dir = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "reconstructs its input" in out and "mse        train" in out
    report = json.loads((run_dir / runlayout.RECONSTRUCTION_REPORT).read_text())
    assert report["denoising"] and report["code_size"] == 8 and report["noisy_input_mse"] > 0
    assert (run_dir / runlayout.RECONSTRUCTION_GRID).is_file()
    assert main(["evaluate", str(run_dir), "--data", "digits:"]) == 0
    assert "mse " in capsys.readouterr().out


def test_a_regression_loss_on_a_reconstruction_is_one_line(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({**DENOISING, "train": {**DENOISING["train"], "loss": "huber"}}))
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err
    assert "loss 'huber' does not fit a reconstruction task" in err and "Traceback" not in err
