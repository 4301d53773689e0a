"""RowWriter / RowReader: .npy files written row by row and read batch by batch without a mapping."""

from __future__ import annotations

import io

import numpy as np
import pytest

from layerlab.data.store import RowReader, RowWriter, import_progress, npy_header


def test_rows_written_in_chunks_read_back_as_numpy_reads_them(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (50, 3, 5, 7), dtype=np.uint8)
    writer = RowWriter(tmp_path / "x.npy", (3, 5, 7), np.uint8, capacity=1000)  # fewer rows than room for
    for start in range(0, 50, 16):
        writer.append(data[start : start + 16])
    writer.close()
    assert np.array_equal(np.load(tmp_path / "x.npy"), data)  # the header says 50 rows, not 1000
    # read per batch with preadv (files above whole_bytes), or read whole once (small files)
    for reader in (RowReader(tmp_path / "x.npy", whole_bytes=0), RowReader(tmp_path / "x.npy")):
        assert reader.shape == (50, 3, 5, 7) and len(reader) == 50
        for positions in ([4, 2, 3, 49, 0], list(range(10, 20)), [7, 7, 8], []):
            assert np.array_equal(reader.rows(np.array(positions, dtype=np.int64)), data[positions])
        with pytest.raises(IndexError):
            reader.rows(np.array([50]))


def test_header_keeps_its_length_when_the_count_shrinks():
    assert len(npy_header((10**9, 3, 64, 64), np.uint8)) % 64 == 0
    long = npy_header((10**9, 3), np.uint8)
    assert len(npy_header((5, 3), np.uint8, len(long))) == len(long)


def test_files_numpy_wrote_read_the_same(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(6, 4)
    np.save(tmp_path / "f.npy", data)
    assert np.array_equal(RowReader(tmp_path / "f.npy").rows(np.array([5, 1])), data[[5, 1]])


def test_progress_shows_only_on_a_terminal():
    stream = io.StringIO()  # not a TTY: a worker log, a pipe, a test
    with import_progress(10, "importing", stream=stream) as advance:
        advance(10)
    assert stream.getvalue() == ""
