"""The engine records the test split's per-example predictions, and the split can be rebuilt to show them."""

from __future__ import annotations

import numpy as np
import torch

from layerlab.data.prepare import held_out_examples
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment
from layerlab.train.testpredictions import TEST_PREDICTIONS, predictions_read

DIGITS = {
    "seed": 3,
    "data": {"source": "digits", "limit": 300},
    "model": {"preset": "mlp", "options": {"hidden": [16]}},
    "train": {"epochs": 1, "batch_size": 64, "num_threads": 1},
}


def test_a_finished_run_writes_predictions_matching_its_confusion_matrix(tmp_path):
    torch.set_num_threads(1)
    cfg = experiment_from_mapping(DIGITS)
    summary = train_experiment(cfg, tmp_path / "run", device="cpu", cache_dir=tmp_path / "cache")
    predictions = predictions_read(tmp_path / "run" / TEST_PREDICTIONS)
    classes = len(summary["classes"])
    matrix = [[len(predictions.cell(t, p)) for p in range(classes)] for t in range(classes)]
    assert matrix == summary["confusion_matrix"]
    # The same split, rebuilt from config and seed: the labels line up example by example.
    positions = list(range(0, len(predictions.true), 7))
    examples = held_out_examples(cfg.data, seed=cfg.seed, positions=positions, cache_dir=tmp_path / "cache")
    assert examples.test_size == len(predictions.true)
    assert np.array_equal(examples.y, predictions.true[positions])
    assert examples.kind == "image" and examples.x.shape[1:] == (1, 8, 8)
