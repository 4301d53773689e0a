"""The report of a clip-counting run: the CNN -> LSTM's test accuracy beside the peak-count baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from layerlab.core import runlayout
from layerlab.core.errors import ConfigError
from layerlab.inference import frames_report
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment

torch.set_num_threads(1)

BODY = [
    {"kind": "conv2d", "name": "conv1", "out": 3, "kernel": 3, "padding": 1},
    {"kind": "relu", "name": "relu1"},
    {"kind": "flatten", "name": "code"},
    {"kind": "linear", "name": "embed", "out": 4},
]
CONFIG = {
    "seed": 0,
    "data": {
        "source": "repetition-counting",
        "video": {"frames": 8, "size": 8, "max_count": 2, "clips_per_class": 12},
    },
    "model": {
        "layers": [
            {"kind": "timedistributed", "name": "frames", "layers": BODY},
            {"kind": "lstm", "name": "rnn", "hidden": 5},
            {"kind": "linear", "name": "head", "out": "classes"},
        ]
    },
    "train": {"epochs": 2, "batch_size": 8, "num_threads": 1},
}


@pytest.fixture(scope="module")
def counting_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("frames") / "run"
    cfg = experiment_from_mapping(CONFIG)
    summary = train_experiment(cfg, run_dir, callbacks=frames_report.report_callbacks(cfg))
    return run_dir, summary


def test_a_counting_run_writes_both_accuracies_when_it_ends(counting_run):
    run_dir, summary = counting_run
    report = json.loads((run_dir / runlayout.FRAMES_REPORT).read_text())
    assert report["network_test_accuracy"] == summary["test_accuracy"]
    chosen, untrained = report["baseline"], report["untrained_baseline"]
    assert chosen["layer"] in ("frames.conv1", "frames.embed") and 0.0 <= chosen["test_accuracy"] <= 1.0
    assert untrained["layer"] in ("frames.conv1", "frames.embed") and report["chance"] == 0.5
    # chosen on train: the chosen layer is the candidate with the best train accuracy
    best_train = max(c["train_accuracy"] for c in report["candidates"])
    assert chosen["train_accuracy"] == best_train and len(report["candidates"]) == 2
    clips = report["clips"]
    assert clips["train"]["used"] == clips["train"]["of"] and clips["test"]["used"] == chosen["test_examples"]
    assert (run_dir / runlayout.FRAMES_TRACES).read_bytes()[:4] == b"\x89PNG"
    lines = frames_report.summary_lines(report)
    assert "peak-count baseline test" in lines[0] and chosen["layer"] in lines[1]


def test_the_report_for_an_existing_run_is_the_same(counting_run, tmp_path):
    run_dir, _ = counting_run
    written = json.loads((run_dir / runlayout.FRAMES_REPORT).read_text())
    again = frames_report.report_for_run(run_dir, cache_dir=tmp_path / "cache")
    assert again["baseline"] == written["baseline"]
    assert again["untrained_baseline"] == written["untrained_baseline"]


def test_the_sample_is_capped_and_seeded():
    x, y = torch.arange(10.0).reshape(10, 1), np.arange(10)
    kept_x, kept_y, total = frames_report.capped_split(x, y, 4, seed=3)
    assert total == 10 and len(kept_y) == 4 and list(kept_x[:, 0].long().numpy()) == list(kept_y)
    assert list(frames_report.capped_split(x, y, 4, seed=3)[1]) == list(kept_y)
    assert len(frames_report.capped_split(x, y, 20, seed=3)[1]) == 10


def test_only_clip_classification_configs_ask_for_it(tmp_path):
    assert frames_report.asks_for_frames(CONFIG)
    assert not frames_report.asks_for_frames({**CONFIG, "train": {"task": "regression"}})
    assert not frames_report.asks_for_frames({"model": {"preset": "mlp"}})
    assert frames_report.report_callbacks(experiment_from_mapping({"model": {"preset": "mlp"}})) == []
    image_run = tmp_path / "image"
    train_experiment(
        experiment_from_mapping(
            {"data": {"source": "spiral", "points_per_class": 20}, "train": {"epochs": 1}}
        ),
        image_run,
    )
    with pytest.raises(ConfigError, match="does not classify clips"):
        frames_report.report_for_run(image_run)
