"""data.layout: (N, T, F) arrays reach sequence layers; flat rows become sequences; images stay images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerlab.core.errors import DataError
from layerlab.data.config import DataConfig
from layerlab.data.layout import arrange, layout_of
from layerlab.data.prepare import input_signature, load_evaluation_data, prepare_data


def trend_sequences(n: int = 160, steps: int = 8, features: int = 2, seed: int = 0):
    """Class 0 rises over time, class 1 falls (the second feature is noise): a task for an LSTM."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.linspace(-1.0, 1.0, steps)
    x = rng.normal(0.0, 0.3, (n, steps, features)).astype(np.float32)
    x[:, :, 0] += np.where(y[:, None] == 0, t, -t)
    return x, y


def test_layout_of_shapes():
    assert layout_of((5, 7, 3), "auto", None, "x")[:2] == ("image", (1, 7, 3))
    assert layout_of((5, 7, 3), "sequence", None, "x")[:2] == ("sequence", (7, 3))
    assert layout_of((5, 12), "sequence", 4, "x")[:2] == ("sequence", (4, 3))
    assert layout_of((5, 12), "sequence", None, "x")[:2] == ("sequence", (12, 1))
    assert layout_of((5, 2, 4, 4), "flat", None, "x")[:2] == ("vector", (32,))
    assert layout_of((5, 8, 8, 3), "image", None, "x")[:2] == ("image", (3, 8, 8))
    with pytest.raises(DataError, match="do not split into 5 time steps"):
        layout_of((5, 12), "sequence", 5, "x")
    with pytest.raises(DataError, match="expected"):
        layout_of((5, 12), "image", None, "x")
    x, kind = arrange(np.arange(24).reshape(2, 12), "sequence", 3, "x")
    assert kind == "sequence" and x.shape == (2, 3, 4) and x[1, 0, 0] == 12


def test_npz_sequences_are_normalized_per_feature(tmp_path):
    x, y = trend_sequences()
    np.savez(tmp_path / "seq.npz", X=x * 10 + 5, y=y)
    cfg = DataConfig(source="npz", path=str(tmp_path / "seq.npz"), layout="sequence")
    assert input_signature(cfg) == ((8, 2), 2)
    data = prepare_data(cfg, seed=0, cache_dir=tmp_path / "c")
    assert data.input_shape == (8, 2) and data.train_x.shape[1:] == (8, 2)
    assert data.preprocessing.kind == "sequence" and data.preprocessing.steps == 8
    assert torch.allclose(data.train_x.mean((0, 1)), torch.zeros(2), atol=1e-4)
    # new data is read the way the run's was, without the layout being repeated
    x_eval, y_eval, _ = load_evaluation_data(f"npz:{tmp_path / 'seq.npz'}", data.preprocessing)
    assert x_eval.shape == (160, 8, 2) and len(y_eval) == 160


def test_csv_rows_become_sequences(tmp_path):
    x, y = trend_sequences(n=40, features=1)
    rows = [",".join(f"{v:.4f}" for v in x[i, :, 0]) + f",{y[i]}" for i in range(len(y))]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    data = prepare_data(
        DataConfig(source="csv", path=str(tmp_path / "s.csv"), layout="sequence", steps=4),
        seed=0,
        cache_dir=tmp_path / "c",
    )
    assert data.input_shape == (4, 2)


def test_lstm_refuses_the_image_reading_with_a_hint_to_the_layout(tmp_path):
    from layerlab.core.errors import ShapeError
    from layerlab.nn.resolve import network_for_data
    from layerlab.train.config import experiment_from_mapping

    x, y = trend_sequences(n=20)
    np.savez(tmp_path / "seq.npz", X=x, y=y)
    cfg = experiment_from_mapping(
        {
            "data": {"source": "npz", "path": str(tmp_path / "seq.npz")},
            "model": {"layers": [{"kind": "lstm", "hidden": 4}, {"kind": "linear", "out": "classes"}]},
        }
    )
    with pytest.raises(ShapeError, match="data.layout: sequence"):
        network_for_data(cfg.model, cfg.data)


def test_an_lstm_trains_on_npz_sequences_end_to_end(tmp_path):
    from layerlab.train.config import experiment_from_mapping
    from layerlab.train.runner import train_experiment

    torch.set_num_threads(1)
    x, y = trend_sequences()
    np.savez(tmp_path / "seq.npz", X=x, y=y)
    cfg = experiment_from_mapping(
        {
            "seed": 0,
            "data": {"source": "npz", "path": str(tmp_path / "seq.npz"), "layout": "sequence"},
            "model": {"layers": [{"kind": "lstm", "hidden": 8}, {"kind": "linear", "out": "classes"}]},
            "train": {"epochs": 8, "batch_size": 16, "lr": 0.03, "checkpoint_every": 8},
        }
    )
    summary = train_experiment(cfg, tmp_path / "run", cache_dir=tmp_path / "cache")
    assert summary["status"] == "completed"
    assert summary["test_accuracy"] >= 0.8, summary["verdict"]  # chance is 0.5
