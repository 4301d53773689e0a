"""Decoded images on disk: ``.npy`` files written row by row and read batch by batch, memory bounded.

``RowWriter`` appends uint8 rows with plain file writes (never through a mapping: written pages sit
in the page cache, not in the process), then writes the header with the final row count, so files
with skipped images need no second pass. ``RowReader`` gathers the rows of a batch
of indices with ``preadv`` (sorted first, consecutive rows in one read), so the resident memory of an
epoch over a file larger than RAM stays that of a batch; the page cache keeps what the kernel can
afford.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np

MAGIC = b"\x93NUMPY\x01\x00"  # .npy format 1.0
WHOLE_BYTES = 32 * 1024 * 1024  # cached arrays up to this size are read into memory whole


def npy_header(shape: tuple[int, ...], dtype, length: int | None = None) -> bytes:
    """A ``.npy`` 1.0 header for a C-ordered array, padded to ``length`` bytes (default: 64-aligned
    with room for the row count to grow by 20 digits)."""
    body = repr(
        {
            "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
            "fortran_order": False,
            "shape": tuple(shape),
        }
    ).encode("latin1")
    if length is None:
        length = -(-(len(MAGIC) + 2 + len(body) + 1 + 20) // 64) * 64
    pad = length - len(MAGIC) - 2 - len(body) - 1
    if pad < 0:
        raise ValueError(f"a header for shape {shape} does not fit in {length} bytes")
    return MAGIC + struct.pack("<H", len(body) + pad + 1) + body + b" " * pad + b"\n"


class RowWriter:
    """Appends rows of one shape and dtype to a new ``.npy`` file (at most ``capacity`` rows).

    Args:
        path: the file to create.
        row_shape: shape of one row, e.g. ``(C, H, W)``.
        dtype: the rows' dtype (uint8 for decoded images).
        capacity: the most rows that will be written (the header leaves room for that count).
    """

    def __init__(self, path: str | Path, row_shape: tuple[int, ...], dtype, capacity: int):
        self.path = Path(path)
        self.row_shape = tuple(int(s) for s in row_shape)
        self.dtype = np.dtype(dtype)
        self.rows = 0
        self._header_length = len(npy_header((int(capacity), *self.row_shape), self.dtype))
        self._handle = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._handle.write(npy_header((int(capacity), *self.row_shape), self.dtype))

    def append(self, block: np.ndarray) -> None:
        """Write ``block`` (``(n, *row_shape)``) after the rows written so far."""
        if tuple(block.shape[1:]) != self.row_shape or block.dtype != self.dtype:
            raise ValueError(f"rows of shape {block.shape[1:]} / {block.dtype} do not fit {self.row_shape}")
        self._handle.write(np.ascontiguousarray(block).data)
        self.rows += len(block)

    def close(self) -> None:
        """Write the final header (the row count), flush and fsync."""
        handle = self._handle
        handle.seek(0)
        handle.write(npy_header((self.rows, *self.row_shape), self.dtype, self._header_length))
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()

    def abort(self) -> None:
        """Close without finishing (the caller removes the file)."""
        self._handle.close()


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, int] | None:
    """``(shape, dtype, data offset)`` of a C-ordered ``.npy`` file, or None for other layouts."""
    with open(path, "rb") as handle:
        major, _ = np.lib.format.read_magic(handle)
        read = {1: np.lib.format.read_array_header_1_0, 2: np.lib.format.read_array_header_2_0}.get(major)
        if read is None:
            return None
        shape, fortran, dtype = read(handle)
        if fortran or dtype.hasobject:
            return None
        return tuple(shape), dtype, handle.tell()


class RowReader:
    """Rows of a ``.npy`` file read with ``preadv`` into new arrays: nothing of the file is mapped.

    Not a memory map on purpose: a mapped page counts in the process's resident memory until the
    kernel reclaims it, and with the large page-cache folios of current kernels one row touched can
    map megabytes. Reads go through the page cache (fast when the file fits in it, bounded when it
    does not); consecutive rows are read in one call. Files of at most ``whole_bytes`` (32 MiB, e.g.
    the 7 MiB of the sign-language photos) are read whole into memory once instead: still uint8, a
    quarter of float32, and gathering a batch from memory is faster than a syscall per row.
    ``array`` is numpy's memory map of the same file, for code that wants an ndarray and reads
    little of it.

    Args:
        path: the ``.npy`` file.
        whole_bytes: files with at most this many bytes of rows are read whole into memory.
    """

    def __init__(self, path: str | Path, whole_bytes: int = WHOLE_BYTES):
        self.path = Path(path)
        header = _header(self.path)
        if header is None:  # another layout: numpy reads it
            array = np.load(self.path, mmap_mode="r")
            header = (tuple(array.shape), array.dtype, None)
        self.shape, self.dtype, self._offset = header
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._array: np.ndarray | None = None
        self._fd: int | None = None
        self._whole: np.ndarray | None = None
        # small enough to hold: read whole on the first batch (a reload of the cache stays cheap)
        self._hold = self._offset is not None and len(self) * self._row_bytes <= whole_bytes
        if self._offset is not None and not self._hold:
            self._fd = os.open(self.path, os.O_RDONLY)

    @property
    def array(self) -> np.ndarray:
        """The whole file as a read-only ndarray (numpy's memory map)."""
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __len__(self) -> int:
        return int(self.shape[0])

    def rows(self, positions) -> np.ndarray:
        """A new array of the rows at ``positions``, in that order."""
        positions = np.asarray(positions, dtype=np.int64)
        n = len(positions)
        if self._hold:
            if self._whole is None:
                count = int(np.prod(self.shape, dtype=np.int64))
                whole = np.fromfile(self.path, dtype=self.dtype, count=count, offset=self._offset)
                self._whole = whole.reshape(self.shape)
            return self._whole[positions]
        if self._fd is None:
            return np.array(self.array[positions])
        if n and (positions.min() < 0 or positions.max() >= len(self)):
            raise IndexError(f"row index out of range 0..{len(self) - 1}")
        ordered = n < 2 or not bool(np.any(positions[1:] < positions[:-1]))
        order = None if ordered else np.argsort(positions, kind="stable")
        wanted = positions if order is None else positions[order]
        out = np.empty((n, *self.shape[1:]), dtype=self.dtype)
        target = out if order is None else np.empty_like(out)
        flat = target.reshape(n, -1).view(np.uint8).reshape(n, self._row_bytes) if n else target
        breaks = np.flatnonzero(np.diff(wanted) != 1) + 1
        for start, stop in zip(np.r_[0, breaks], np.r_[breaks, n], strict=True):
            if stop > start:
                self._read(
                    memoryview(flat[start:stop]).cast("B"),
                    self._offset + int(wanted[start]) * self._row_bytes,
                )
        if order is not None:
            out[order] = target
        return out

    def _read(self, view: memoryview, offset: int) -> None:
        done = 0
        while done < len(view):
            got = os.preadv(self._fd, [view[done:]], offset + done)
            if got <= 0:
                raise OSError(f"{self.path.name} is shorter than its header says")
            done += got

    def close(self) -> None:
        """Close the file (``rows`` no longer works)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()


@contextlib.contextmanager
def import_progress(
    total: int, description: str, stream: TextIO | None = None
) -> Iterator[Callable[[int], None]]:
    """An ``advance(n)`` callable: a rich progress bar on ``stream`` (stderr) when it is a terminal,
    nothing otherwise (tests, worker logs and pipes stay clean)."""
    stream = sys.stderr if stream is None else stream
    if not (hasattr(stream, "isatty") and stream.isatty()):
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=stream),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def release_freed_memory() -> None:
    """Hand memory freed by the allocator back to the system (glibc ``malloc_trim``; elsewhere a no-op).

    A chunked import frees a chunk of decoded rows at a time, much of it allocated in decoding
    threads' arenas; glibc keeps such memory for reuse, which shows as resident memory that no
    array holds. Trimming after each chunk keeps the import's footprint that of one chunk.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _libc_function(name: str):
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):  # musl and other libcs lack glibc's malloc tuning
        return None


def _malloc_trim():
    return _libc_function("malloc_trim")


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
BATCH_MMAP_THRESHOLD = 1024 * 1024


@functools.cache
def return_large_blocks() -> None:
    """Fix glibc's mmap threshold at 1 MiB for this process (once; elsewhere a no-op).

    Reading batches allocates and frees megabyte arrays thousands of times an epoch. glibc
    raises its mmap threshold whenever such a block is freed, after which they come from the heap,
    whose freed memory it keeps: the resident memory of an epoch then wandered 20-90 MiB above
    the batches in flight, from run to run. With a fixed threshold every block above 1 MiB is its
    own mapping, returned on free (a few page faults per batch).
    """
    mallopt = _libc_function("mallopt")
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, BATCH_MMAP_THRESHOLD)
