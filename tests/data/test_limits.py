"""Decompression limits in the engine: pixels and array bytes refused from headers, before decoding."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from layerlab.core.errors import DataError
from layerlab.data.config import DataConfig
from layerlab.data.decode import decode_files_strict, decode_image, decode_many
from layerlab.data.limits import DecodeLimits
from layerlab.data.sources.arrays import load_arrays

SMALL = DecodeLimits(max_image_pixels=10_000, max_array_bytes=1_000)


@pytest.fixture
def big_png(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (200, 200)).save(path)  # 40,000 pixels in a few hundred bytes
    return path


def test_an_image_above_the_pixel_cap_is_refused_naming_the_setting(big_png):
    with pytest.raises(DataError) as error:
        decode_image(big_png, [8, 8], 1, limits=SMALL)
    text = error.value.one_line()
    assert "200x200" in text and "LAYERLAB_MAX_IMAGE_PIXELS" in text and str(big_png.parent) not in text
    assert decode_image(big_png, [8, 8], 1, limits=DecodeLimits()).shape == (1, 8, 8)


def test_decode_many_reports_a_bomb_as_a_failed_file(big_png):
    images, decoded, failed = decode_many([big_png], [8, 8], 1, limits=SMALL)
    assert decoded == [] and failed and "above the limit" in failed[0][1]


def test_strict_decoding_names_files_as_given_not_by_server_path(tmp_path):
    bad = tmp_path / "0-cat.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError) as error:
        decode_files_strict([bad], [8, 8], 1, names=["cat.png"])
    assert "cat.png" in error.value.one_line() and str(tmp_path) not in error.value.one_line()


@pytest.mark.parametrize("source", ["npz", "npy"])
def test_arrays_above_the_byte_cap_are_refused_before_loading(tmp_path, source):
    x, y = np.zeros((100, 4), dtype=np.float32), np.arange(100) % 2  # X is 1,600 bytes
    if source == "npz":
        path = tmp_path / "a.npz"
        np.savez_compressed(path, X=x, y=y)
    else:
        np.save(tmp_path / "X.npy", x)
        np.save(tmp_path / "y.npy", y)
        path = tmp_path
    cfg = DataConfig(source=source, path=str(path))
    with pytest.raises(DataError) as error:
        load_arrays(cfg, limits=SMALL)
    assert "LAYERLAB_MAX_ARRAY_MB" in error.value.one_line() and "[100, 4]" in error.value.one_line()
    assert load_arrays(cfg, limits=DecodeLimits()).x.shape == (100, 4)
