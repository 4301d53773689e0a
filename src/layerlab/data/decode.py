"""Decoding image files into fixed-size uint8 arrays, on a small thread pool."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from layerlab.core.errors import DataError
from layerlab.data.limits import DecodeLimits, image_pixels_check

# Pillow releases the GIL while it decodes and resizes, so threads scale without the start-up
# and pickling cost of a process pool: 640x480 PNGs decode 1.8x faster on 2 threads here. Small
# files (the 12 KB sign-language JPEGs) are dominated by per-file Python work that holds the GIL;
# there one thread was ~10% faster than two (and than a 2-process pool), so they stay serial.
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))
POOL_MIN_BYTES = 32 * 1024  # average file size from which the thread pool pays off


def choose_workers(paths: Sequence[str | Path]) -> int:
    """Threads for decoding ``paths``: the pool for large files, one thread for small ones."""
    if len(paths) < 32:
        return 1
    sample = paths[:: max(1, len(paths) // 32)][:32]
    try:
        average = sum(os.path.getsize(p) for p in sample) / len(sample)
    except OSError:
        return DEFAULT_WORKERS
    return DEFAULT_WORKERS if average >= POOL_MIN_BYTES else 1


def decode_image(
    path: str | Path, size: Sequence[int], channels: int, *, limits: DecodeLimits | None = None
) -> np.ndarray:
    """Decode one image file to a ``(channels, height, width)`` uint8 array.

    Args:
        path: the image file (any format Pillow reads).
        size: ``[height, width]`` to resize to (the aspect ratio is not kept).
        channels: 1 for grayscale, 3 for RGB.
        limits: the pixel cap, checked from the header before decoding (default: ``default_limits()``).
    """
    height, width = int(size[0]), int(size[1])
    mode = "L" if channels == 1 else "RGB"
    with Image.open(path) as image:
        # Image.open reads the header only: a 2 KB PNG declaring 13000x13000 is refused undecoded.
        image_pixels_check(image.width, image.height, Path(path).name, limits)
        # draft() lets the JPEG decoder downscale by 1/2, 1/4 or 1/8 while decoding: large phone
        # photos then decode several times faster; it never goes below the requested size.
        image.draft(mode, (width, height))
        image = ImageOps.exif_transpose(image)
        image = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    if channels == 1:
        return array[None, :, :]
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def _decode_or_reason(args: tuple[str, Sequence[int], int, DecodeLimits | None]) -> np.ndarray | str:
    path, size, channels, limits = args
    try:
        return decode_image(path, size, channels, limits=limits)
    except DataError as exc:
        return exc.one_line()
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        # Pillow names the file it was given; the reason names it as the user does.
        reason = str(exc).splitlines()[0].replace(path, Path(path).name) if str(exc) else ""
        return reason or type(exc).__name__


def decode_many(
    paths: Sequence[str | Path],
    size: Sequence[int],
    channels: int,
    *,
    workers: int | None = None,
    limits: DecodeLimits | None = None,
    pool: ThreadPoolExecutor | None = None,
) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]:
    """Decode many files; failures are returned, never raised.

    Args:
        paths: image files.
        size: ``[height, width]``.
        channels: 1 or 3.
        workers: decoding threads (default: ``choose_workers``); 1 decodes in this thread.
        limits: the pixel cap per image (default: ``default_limits()``); larger images fail.
        pool: decode on this executor (a chunked import keeps one: the same threads, the same
            malloc arenas, chunk after chunk); ``workers`` is then ignored.

    Returns:
        ``(images, decoded, failed)``: a ``(len(decoded), C, H, W)`` uint8 array, the indices of the
        decoded paths, and ``(index, reason)`` for every file that could not be decoded.
    """
    workers = choose_workers(paths) if workers is None else max(1, workers)
    jobs = [(str(p), tuple(size), channels, limits) for p in paths]
    if pool is not None:
        results = list(pool.map(_decode_or_reason, jobs, chunksize=16))
    elif workers == 1:
        results = [_decode_or_reason(job) for job in jobs]
    else:
        with ThreadPoolExecutor(max_workers=workers) as own:
            results = list(own.map(_decode_or_reason, jobs, chunksize=16))
    images = np.empty((len(jobs), channels, int(size[0]), int(size[1])), dtype=np.uint8)
    decoded: list[int] = []
    failed: list[tuple[int, str]] = []
    for index, result in enumerate(results):
        if isinstance(result, str):
            failed.append((index, result))
        else:
            images[len(decoded)] = result
            decoded.append(index)
    return images[: len(decoded)], decoded, failed


def decode_files_strict(
    paths: Sequence[str | Path],
    size: Sequence[int],
    channels: int,
    *,
    names: Sequence[str] | None = None,
    limits: DecodeLimits | None = None,
) -> np.ndarray:
    """Decode files for prediction: any file that cannot be read is a DataError naming it.

    Args:
        names: how errors name the files (e.g. the uploads' names; default: the paths).
        limits: the pixel cap per image (default: ``default_limits()``).
    """
    names = [str(p) for p in paths] if names is None else list(names)
    for path, name in zip(paths, names, strict=True):
        if not Path(path).is_file():
            raise DataError(f"input file '{name}' does not exist", hint="check the path")
    images, _, failed = decode_many(paths, size, channels, limits=limits)
    if failed:
        index, reason = failed[0]
        reason = reason.replace(Path(paths[index]).name, names[index])
        raise DataError(
            f"cannot decode image '{names[index]}': {reason}", hint="pass PNG, JPEG or another image"
        )
    return images
