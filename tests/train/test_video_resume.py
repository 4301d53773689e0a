"""A CNN -> LSTM over video clips resumes exactly after a crash (dropout in the per-frame body draws RNG)."""

from __future__ import annotations

import pytest

from layerlab.train.callbacks import Callback
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment


def config():
    return experiment_from_mapping(
        {
            "seed": 5,
            "data": {
                "source": "repetition-counting",
                "video": {"frames": 8, "size": 8, "max_count": 2, "clips_per_class": 10},
            },
            "model": {
                "layers": [
                    {
                        "kind": "timedistributed",
                        "name": "frames",
                        "layers": [
                            {"kind": "conv2d", "out": 2, "kernel": 3, "padding": 1},
                            {"kind": "relu"},
                            {"kind": "dropout2d", "p": 0.3},
                            {"kind": "flatten"},
                        ],
                    },
                    {"kind": "lstm", "hidden": 4},
                    {"kind": "dropout", "p": 0.2},
                    {"kind": "linear", "out": "classes"},
                ]
            },
            "train": {"epochs": 4, "batch_size": 4, "checkpoint_every": 2, "num_threads": 1},
        }
    )


class Crash(Callback):
    def on_epoch_end(self, trainer, epoch, metrics):
        if epoch == 3:
            raise RuntimeError("crash")


def test_resume_of_a_video_run_is_exact(tmp_path):
    whole = train_experiment(config(), tmp_path / "whole")
    with pytest.raises(RuntimeError):
        train_experiment(config(), tmp_path / "cut", callbacks=[Crash()])
    resumed = train_experiment(None, tmp_path / "cut", resume=True)
    assert resumed["weights_sha256"] == whole["weights_sha256"]
