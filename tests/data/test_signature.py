"""The input shape known from the config and headers, checked against the network before any import."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import write_image

from layerlab.core.errors import ShapeError
from layerlab.data.config import DataConfig
from layerlab.data.signature import config_signature


@pytest.fixture
def no_import(monkeypatch):
    """Any decoding or array reading fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the data was imported")

    import layerlab.data.prepare as prepare
    import layerlab.data.sources.imagefolder as imagefolder

    monkeypatch.setattr(imagefolder, "decode_many", refuse)
    monkeypatch.setattr(prepare, "load_raw", refuse)


def test_signature_from_config_and_headers(tmp_path, no_import):
    np.savez_compressed(tmp_path / "d.npz", X=np.zeros((7, 28, 28, 3), dtype=np.uint8), y=np.arange(7) % 3)
    assert config_signature(DataConfig(source="npz", path=str(tmp_path / "d.npz"))) == ((3, 28, 28), 3)
    cfg = DataConfig(source="npz", path=str(tmp_path / "d.npz"), size=[14, 14], channels=1)
    assert config_signature(cfg) == ((1, 14, 14), 3)
    np.save(tmp_path / "X.npy", np.zeros((5, 6), dtype=np.float32))
    np.save(tmp_path / "y.npy", np.array([0, 1, 1, 0, 1]))
    assert config_signature(DataConfig(source="npy", path=str(tmp_path))) == ((6,), 2)
    assert config_signature(DataConfig(source="spiral", classes=5)) == ((2,), 5)
    assert config_signature(DataConfig(source="not-so-clevr")) == ((2,), 4096)


def test_a_run_checks_the_network_before_decoding_the_images(tmp_path, no_import):
    from layerlab.train.config import experiment_from_mapping
    from layerlab.train.runner import train_experiment

    for label, value in (("a", 20), ("b", 220)):
        write_image(tmp_path / "photos" / label / "1.png", value)
    cfg = experiment_from_mapping(
        {
            "data": {"source": "imagefolder", "path": str(tmp_path / "photos"), "size": [6, 6]},
            "model": {"layers": [{"kind": "conv2d", "out": 4, "kernel": 7}, {"kind": "flatten"}]},
        }
    )
    with pytest.raises(ShapeError, match=r"input 1x6x6, kernel 7"):
        train_experiment(cfg, tmp_path / "run", cache_dir=tmp_path / "cache")
