"""SplitView: image splits read from the cache batch by batch, interchangeable with the old tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from layerlab.data.config import DataConfig
from layerlab.data.prepare import load_source, prepare_data
from layerlab.data.views import SplitView
from layerlab.train import adapters
from layerlab.train.callbacks import Callback
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment


@pytest.fixture
def noisy_folder(tmp_path):
    """Two classes of random 10x12 RGB PNGs (every pixel value occurs)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "noisy"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for n in range(24):
            pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
            Image.fromarray(pixels + (40 if label == "b" else 0)).save(root / label / f"{n}.png")
    return root


def test_batches_equal_the_whole_split_normalized_at_once(noisy_folder, tmp_path):
    cfg = DataConfig(source="imagefolder", path=str(noisy_folder), size=[12, 10], channels=3)
    data = prepare_data(cfg, seed=0, cache_dir=tmp_path / "cache")
    view = data.train_x
    assert isinstance(view, SplitView) and view.shape == (len(data.train_y), 3, 12, 10)
    raw, cache = load_source(cfg, seed=0, cache_dir=tmp_path / "cache")
    assert cache == "hit" and raw.reader is not None
    whole = data.preprocessing.apply(raw.x[view.positions])  # the old in-memory path, bit for bit
    index = torch.randperm(len(view), generator=torch.Generator().manual_seed(1))[:9]
    assert torch.equal(view[index], whole[index])
    assert torch.equal(view[2:7], whole[2:7]) and torch.equal(view[3], whole[3])
    assert torch.equal(view.materialize(), whole)
    assert view[index].dtype == torch.float32 and view.to("cpu").device.type == "cpu"


def test_streaming_statistics_match_the_in_memory_ones(noisy_folder, tmp_path):
    from layerlab.data.preprocess import _channel_statistics

    cfg = DataConfig(source="imagefolder", path=str(noisy_folder), size=[12, 10], channels=3)
    data = prepare_data(cfg, seed=0, cache_dir=tmp_path / "cache")
    raw, _ = load_source(cfg, seed=0, cache_dir=tmp_path / "cache")
    mean, std = _channel_statistics(np.asarray(raw.x[data.train_x.positions]), "standard")
    np.testing.assert_allclose(data.preprocessing.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(data.preprocessing.std, std, rtol=1e-12)
    # and so the normalized training split has mean 0 and std 1 per channel
    x = data.train_x.materialize()
    assert x.mean((0, 2, 3)).abs().max() < 1e-5 and (x.std((0, 2, 3), unbiased=False) - 1).abs().max() < 1e-4


def test_a_limit_reads_the_kept_rows_of_the_whole_cached_array(noisy_folder, tmp_path):
    cfg = DataConfig(source="imagefolder", path=str(noisy_folder), size=[12, 10], channels=3, limit=20)
    data = prepare_data(cfg, seed=0, cache_dir=tmp_path / "cache")
    assert len(data.train_y) + len(data.val_y) + len(data.test_y) == 20
    raw, _ = load_source(cfg, seed=0, cache_dir=tmp_path / "cache")
    assert len(raw.x) == 48  # nothing was copied out: the views index the 48 cached rows
    for x, y in ((data.train_x, data.train_y), (data.test_x, data.test_y)):
        assert torch.equal(torch.from_numpy(raw.y[x.positions]), y)


class Crash(Callback):
    def on_epoch_end(self, trainer, epoch, metrics):
        if epoch == 2:
            raise RuntimeError("crash")


def _experiment(folder):
    return experiment_from_mapping(
        {
            "seed": 3,
            "data": {
                "source": "imagefolder",
                "path": str(folder),
                "size": [12, 10],
                "channels": 3,
                "augment": {"hflip": True, "shift": 2, "noise": 0.05},
            },
            "model": {
                "layers": [
                    {"kind": "conv2d", "out": 4, "kernel": 3, "padding": 1},
                    {"kind": "batchnorm"},
                    {"kind": "relu"},
                    {"kind": "flatten"},
                    {"kind": "linear", "out": "classes"},
                ]
            },
            "train": {"epochs": 4, "batch_size": 8, "checkpoint_every": 1, "num_threads": 1},
        }
    )


def test_views_train_bit_for_bit_like_tensors_and_resume_exactly(noisy_folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    viewed = train_experiment(_experiment(noisy_folder), tmp_path / "views", device="cpu", cache_dir=cache)

    with pytest.raises(RuntimeError, match="crash"):
        train_experiment(
            _experiment(noisy_folder), tmp_path / "cut", device="cpu", cache_dir=cache, callbacks=[Crash()]
        )
    resumed = train_experiment(None, tmp_path / "cut", resume=True, device="cpu", cache_dir=cache)
    assert resumed["weights_sha256"] == viewed["weights_sha256"]

    original = adapters.prepare_data

    def whole_tensors(*args, **kwargs):  # the in-memory path: every split one float32 tensor
        data = original(*args, **kwargs)
        for name in ("train_x", "val_x", "test_x"):
            setattr(data, name, getattr(data, name).materialize())
        return data

    monkeypatch.setattr(adapters, "prepare_data", whole_tensors)
    tensors = train_experiment(_experiment(noisy_folder), tmp_path / "tensors", device="cpu", cache_dir=cache)
    assert tensors["weights_sha256"] == viewed["weights_sha256"]
    assert tensors["test_accuracy"] == viewed["test_accuracy"]
