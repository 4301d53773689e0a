"""Preprocessing: statistics, apply, the stored dict form and decoding files for prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from data_helpers import write_image

from layerlab.core.errors import DataError
from layerlab.data.preprocess import Preprocessing


def test_standard_statistics_per_channel():
    x = np.zeros((4, 2, 3, 3), dtype=np.float32)
    x[:, 0] = np.arange(4)[:, None, None]
    x[:, 1] = 5.0  # constant channel: std stays 1, never divides by zero
    prep = Preprocessing.fit(x, kind="image", normalize="standard", classes=["a"])
    assert prep.mean == pytest.approx([1.5, 5.0]) and prep.std == pytest.approx([np.std(np.arange(4)), 1.0])
    out = prep.apply(x)
    assert out[:, 0].mean().item() == pytest.approx(0.0, abs=1e-6)
    assert out[:, 0].std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)
    assert prep.input_shape == (2, 3, 3)


def test_unit_and_none_for_vectors():
    x = np.array([[0.0, 10.0], [2.0, 30.0]], dtype=np.float32)
    unit = Preprocessing.fit(x, kind="vector", normalize="unit", classes=["a", "b"])
    assert unit.apply(x).tolist() == [[0.0, 0.0], [1.0, 1.0]]
    none = Preprocessing.fit(x, kind="vector", normalize="none", classes=["a", "b"])
    assert torch.equal(none.apply(x), torch.from_numpy(x))
    assert unit.input_shape == (2,)


def test_uint8_images_are_scaled_and_input_is_not_modified():
    x = np.full((2, 1, 2, 2), 255, dtype=np.uint8)
    prep = Preprocessing.fit(x, kind="image", normalize="none", classes=["a"])
    assert prep.apply(x).max().item() == 1.0
    floats = np.ones((2, 3), dtype=np.float32)
    vec = Preprocessing.fit(floats, kind="vector", normalize="standard", classes=["a"])
    vec.apply(floats)
    assert floats.tolist() == np.ones((2, 3)).tolist()


def test_dict_round_trip_through_json():
    prep = Preprocessing.fit(
        np.random.rand(5, 3).astype(np.float32), kind="vector", normalize="standard", classes=["x"]
    )
    again = Preprocessing.from_dict(json.loads(json.dumps(prep.to_dict())))
    assert again == prep
    assert Preprocessing.from_dict({**prep.to_dict(), "future": 1}).extra == {"future": 1}


def test_wrong_shape_is_a_data_error():
    prep = Preprocessing.fit(
        np.zeros((2, 1, 4, 4), dtype=np.uint8), kind="image", normalize="none", classes=["a"]
    )
    with pytest.raises(DataError, match="takes"):
        prep.apply(np.zeros((2, 1, 5, 5), dtype=np.uint8))


def test_load_images_decodes_with_run_size_and_stats(tmp_path):
    write_image(tmp_path / "big.jpg", 200, size=(40, 30))
    train = np.full((3, 1, 8, 8), 100, dtype=np.uint8)
    train[0] = 50
    prep = Preprocessing.fit(train, kind="image", normalize="standard", classes=["a"])
    out = prep.load_images([tmp_path / "big.jpg"])
    assert out.shape == (1, 1, 8, 8)
    expected = (200 / 255 - prep.mean[0]) / prep.std[0]
    assert out.mean().item() == pytest.approx(expected, abs=0.05)
    (tmp_path / "bad.png").write_bytes(b"xx")
    with pytest.raises(DataError, match="bad.png"):
        prep.load_images([tmp_path / "bad.png"])
    with pytest.raises(DataError, match="does not exist"):
        prep.load_images([tmp_path / "missing.png"])


def test_statistics_over_chunks_match_numpy():
    from layerlab.data.preprocess import _channel_statistics

    x = np.random.default_rng(0).integers(0, 256, size=(10, 3, 4, 4)).astype(np.uint8)
    mean, std = _channel_statistics(x, "standard", chunk=3)
    as_float = x.astype(np.float64) / 255
    assert np.allclose(mean, as_float.mean(axis=(0, 2, 3)))
    assert np.allclose(std, as_float.std(axis=(0, 2, 3)))
    low, span = _channel_statistics(x, "unit", chunk=4)
    assert np.allclose(low, as_float.min(axis=(0, 2, 3)))
    assert np.allclose(low + span, as_float.max(axis=(0, 2, 3)))
