"""Not-so-Clevr coordinate regression (data.target: coordinates): one-hot images in, (i, j) / 64 out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerlab.core.configtree import from_mapping
from layerlab.core.errors import ConfigError
from layerlab.data.config import DataConfig
from layerlab.data.prepare import input_signature, prepare_data
from layerlab.data.sources import load_raw


def data_config(**fields) -> DataConfig:
    return from_mapping(DataConfig, {"source": "not-so-clevr", **fields}, "data")


def test_one_hot_images_and_normalized_coordinates():
    raw = load_raw(data_config(target="coordinates"), seed=0)
    assert raw.x.shape == (3136, 1, 64, 64) and raw.x.dtype == np.uint8 and raw.kind == "image"
    assert (raw.x.reshape(3136, -1) == 255).sum(axis=1).tolist() == [1] * 3136  # one hot pixel each
    assert raw.y.shape == (3136, 2) and raw.y.dtype == np.float32 and raw.classes == ["i", "j"]
    flat = raw.x.reshape(3136, -1).argmax(axis=1)
    i, j = np.rint(raw.y[:, 0] * 64).astype(int), np.rint(raw.y[:, 1] * 64).astype(int)
    assert np.array_equal(flat, i * 64 + j)  # the hot pixel is the target (row i, column j)
    assert i.min() == 4 and i.max() == 59 and j.min() == 4 and j.max() == 59


@pytest.mark.parametrize("split", ["uniform", "quadrant"])
def test_regression_holds_out_the_positions_classification_holds_out(split):
    classification = load_raw(data_config(task_split=split), seed=7)
    regression = load_raw(data_config(task_split=split, target="coordinates"), seed=7)
    assert np.array_equal(classification.test_mask, regression.test_mask)
    # and the same positions: the classification label is the regression target's pixel index
    pixel = np.rint(regression.y * 64).astype(int)
    assert np.array_equal(classification.y, pixel[:, 0] * 64 + pixel[:, 1])


def test_quadrant_test_targets_are_all_past_the_middle():
    raw = load_raw(data_config(task_split="quadrant", target="coordinates"), seed=0)
    test, train = raw.y[raw.test_mask], raw.y[~raw.test_mask]
    assert len(test) == 27 * 27 and (test > 0.5).all()
    assert not ((train[:, 0] > 0.5) & (train[:, 1] > 0.5)).any()


def test_prepare_keeps_float_targets_and_the_raw_one_hot():
    prepared = prepare_data(data_config(target="coordinates", normalize="none", split={"val": 0.1}), seed=0)
    assert prepared.train_y.dtype == torch.float32 and prepared.train_y.shape[1] == 2
    assert len(prepared.test_y) == round(0.2 * 3136)
    x = prepared.train_x[:4]
    x = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    assert x.shape == (4, 1, 64, 64) and sorted(torch.unique(x).tolist()) == [0.0, 1.0]


def test_signature_without_generating():
    assert input_signature(data_config(target="coordinates")) == ((1, 64, 64), 2)
    assert input_signature(data_config()) == ((2,), 4096)


def test_target_is_checked():
    with pytest.raises(ConfigError, match="did you mean 'coordinates'"):
        data_config(target="coordinate")
    with pytest.raises(ConfigError, match="applies to the not-so-clevr source, not spiral"):
        from_mapping(DataConfig, {"source": "spiral", "target": "coordinates"}, "data")


@pytest.mark.parametrize(
    ("data", "train", "message"),
    [
        (
            {"target": "coordinates"},
            {},
            "is a regression task, not classification; set train.task: regression",
        ),
        (
            {},
            {"task": "regression", "loss": "mse"},
            "is a classification task, not regression; set data.target",
        ),
    ],
)
def test_the_task_must_match_the_target(data, train, message):
    from layerlab.train.config import experiment_from_mapping
    from layerlab.train.tasks import check_experiment

    cfg = experiment_from_mapping({"data": {"source": "not-so-clevr", **data}, "train": train})
    with pytest.raises(ConfigError, match=message):
        check_experiment(cfg)
