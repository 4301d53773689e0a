"""Decoding files: sizes and channels, the thread pool giving the same arrays, failures returned."""

from __future__ import annotations

import numpy as np
from data_helpers import write_image

from layerlab.data.decode import choose_workers, decode_image, decode_many


def test_decode_image_size_and_channels(tmp_path):
    write_image(tmp_path / "x.png", 120, size=(20, 10))
    assert decode_image(tmp_path / "x.png", (6, 4), 1).shape == (1, 6, 4)
    rgb = decode_image(tmp_path / "x.png", (6, 4), 3)
    assert rgb.shape == (3, 6, 4) and rgb.dtype == np.uint8 and int(rgb.mean()) == 120


def test_thread_pool_gives_the_same_arrays_as_one_thread(tmp_path):
    paths = []
    for n in range(40):
        write_image(tmp_path / f"{n}.png", n * 5)
        paths.append(tmp_path / f"{n}.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    paths.insert(7, tmp_path / "bad.png")
    one, ok_one, failed_one = decode_many(paths, (8, 8), 1, workers=1)
    pool, ok_pool, failed_pool = decode_many(paths, (8, 8), 1, workers=2)
    assert np.array_equal(one, pool) and ok_one == ok_pool and len(one) == 40
    assert [i for i, _ in failed_one] == [i for i, _ in failed_pool] == [7]


def test_small_files_decode_in_one_thread(tmp_path):
    paths = []
    for n in range(40):
        write_image(tmp_path / f"{n}.png", n)
        paths.append(tmp_path / f"{n}.png")
    assert choose_workers(paths) == 1
    assert choose_workers(paths[:3]) == 1
