"""Every shipped example runs as written, on reduced sizes (the full targets are in bench/bench_examples.py)."""

import json
from pathlib import Path

import pytest
import torch

from layerlab.core import runlayout
from layerlab.train.config import load_experiment
from layerlab.train.runner import train_experiment

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SIGN = ROOT.parent / "shared" / "datasets" / "sign-language-digits" / "Dataset"


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def run_example(name: str, tmp_path: Path, *overrides: str) -> dict:
    cfg = load_experiment(EXAMPLES / name, list(overrides))
    return train_experiment(cfg, tmp_path / name.removesuffix(".yaml"))


AUTOENCODERS = (
    "autoencoder-dense.yaml",
    "autoencoder-sparse.yaml",
    "autoencoder-conv.yaml",
    "autoencoder-denoising.yaml",
)


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_autoencoder_examples_run_as_written(tmp_path, name):
    summary = run_example(name, tmp_path, "train.epochs=1", "data.limit=300")
    assert summary["task"] == "reconstruction" and summary["test_mse"] < 0.3, summary["verdict"]


def test_every_example_is_tested():
    tested = {
        "spiral-mlp.yaml",
        "digits-lenet.yaml",
        "sign-language.yaml",
        "coordconv-quadrant.yaml",
        "conv-quadrant.yaml",
        "video-count-cnn-lstm.yaml",
        *AUTOENCODERS,
    }
    assert {p.name for p in EXAMPLES.glob("*.yaml")} == tested


def test_spiral_mlp_as_shipped_reaches_99_percent_train_accuracy(tmp_path):
    summary = run_example("spiral-mlp.yaml", tmp_path)
    assert summary["train_accuracy"] >= 0.99, summary["verdict"]


def test_digits_lenet_learns_in_a_few_epochs(tmp_path):
    summary = run_example("digits-lenet.yaml", tmp_path, "train.epochs=6")
    assert summary["test_accuracy"] >= 0.93, summary["verdict"]


def test_coordconv_generalizes_to_the_unseen_quadrant_and_conv_does_not(tmp_path):
    # 1,200 of the canvas's squares (drawn over all of it, the quadrant still held out): 11 s, not 90
    coord = run_example("coordconv-quadrant.yaml", tmp_path, "train.epochs=3", "data.limit=1200")
    conv = run_example("conv-quadrant.yaml", tmp_path, "train.epochs=2", "data.limit=1200")
    assert coord["test_accuracy"] >= 0.95, coord["verdict"]
    assert conv["test_accuracy"] <= 0.10, conv["verdict"]
    assert coord["parameters"] < 10_000


def test_video_count_example_runs_as_written_on_fewer_clips(tmp_path):
    summary = run_example(
        "video-count-cnn-lstm.yaml", tmp_path, "train.epochs=1", "data.video.clips_per_class=8"
    )
    assert summary["status"] == "completed" and summary["parameters"] == 35_652  # the docs' figure
    network = json.loads((tmp_path / "video-count-cnn-lstm" / runlayout.NETWORK).read_text())
    assert network["input_shape"] == [20, 1, 24, 24] and network["classes"] == ["1", "2", "3", "4"]


@pytest.mark.slow
@pytest.mark.skipif(not SIGN.is_dir(), reason=f"the sign language digits are not at {SIGN}")
def test_sign_language_as_shipped_runs_with_a_path_override(tmp_path):
    summary = run_example(
        "sign-language.yaml", tmp_path, f"data.path={SIGN}", "train.epochs=2", "data.size=[32,32]"
    )
    assert summary["data_report"]["totals"]["test"] > 200
    assert summary["test_accuracy"] > 0.2, summary["verdict"]
