"""``layerlab train`` of a clip-counting run prints and writes both accuracies; ``inspect --baseline`` too."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from layerlab.cli.main import main
from layerlab.core import runlayout

COUNTING = {
    "seed": 0,
    "data": {
        "source": "repetition-counting",
        "video": {"frames": 8, "size": 8, "max_count": 2, "clips_per_class": 10},
    },
    "model": {
        "layers": [
            {"kind": "timedistributed", "name": "frames", "layers": [
                {"kind": "conv2d", "name": "conv1", "out": 3, "kernel": 3, "padding": 1},
                {"kind": "flatten"}, {"kind": "linear", "name": "embed", "out": 4},
            ]},
            {"kind": "lstm", "hidden": 5},
            {"kind": "linear", "out": "classes"},
        ]
    },
    "train": {"epochs": 1, "batch_size": 8, "num_threads": 1},
}  # fmt: skip


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LAYERLAB_RECORD", "0")
    torch.set_num_threads(1)


def test_train_prints_both_accuracies_and_inspect_recomputes_a_missing_report(tmp_path, capsys):
    config = tmp_path / "count.yaml"
    config.write_text(yaml.safe_dump(COUNTING))
    run_dir = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "counting   network test" in out and "peak-count baseline test" in out and "untrained net" in out
    written = json.loads((run_dir / runlayout.FRAMES_REPORT).read_text())
    (run_dir / runlayout.FRAMES_REPORT).unlink()
    (run_dir / runlayout.FRAMES_TRACES).unlink()
    assert main(["inspect", str(run_dir), "--baseline", "--json"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["baseline"] == written["baseline"] and (run_dir / runlayout.FRAMES_TRACES).is_file()
    assert again["network_test_accuracy"] == written["network_test_accuracy"] is not None


def test_inspect_without_input_or_baseline_says_what_to_give(tmp_path, capsys):
    assert main(["inspect", str(tmp_path), "--json"]) != 0
    assert "give an input to inspect" in capsys.readouterr().err
