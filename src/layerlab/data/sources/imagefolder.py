"""The ``imagefolder`` importer: one sub-folder per class, images decoded, resized and converted."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from layerlab.core.errors import DataError
from layerlab.data.config import DataConfig
from layerlab.data.decode import choose_workers, decode_many
from layerlab.data.sources.base import RawData, natural_key
from layerlab.data.store import RowWriter, import_progress, release_freed_memory, return_large_blocks

DEFAULT_SIZE = (64, 64)
DEFAULT_CHANNELS = 1
IMPORT_CHUNK_BYTES = 8 * 1024 * 1024  # decoded pixels per chunk of an import into the cache


def image_size(cfg: DataConfig) -> tuple[int, int]:
    """``(height, width)`` images are resized to."""
    return (int(cfg.size[0]), int(cfg.size[1])) if cfg.size else DEFAULT_SIZE


def image_channels(cfg: DataConfig) -> int:
    """1 (grayscale) or 3 (RGB)."""
    return cfg.channels or DEFAULT_CHANNELS


@dataclass
class FolderListing:
    """The classes of an image folder and its files, with sizes and mtimes for the cache key."""

    root: Path
    classes: list[str]
    files: list[tuple[str, int, int, int]]  # (path relative to root, class index, size, mtime_ns)


def _check_root(path: str | None) -> Path:
    root = Path(path or "").expanduser()
    if not path or not root.exists():
        raise DataError(f"data path '{path}' does not exist", hint="check data.path (--set data.path=...)")
    if not root.is_dir():
        raise DataError(
            f"'{root}' is a file; imagefolder needs a folder with one sub-folder per class",
            hint="point data.path at the folder, or use source npz/npy/csv for array files",
        )
    return root


def class_folders(path: str | None) -> list[str]:
    """The class sub-folders of an image folder in natural order (a DataError when there are none)."""
    root = _check_root(path)
    with os.scandir(root) as entries:
        names = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
    if not names:
        raise DataError(
            f"no class sub-folders in '{root}'",
            hint=f"put the images in one sub-folder per class, e.g. {root / 'cat' / '001.jpg'}",
        )
    return sorted(names, key=natural_key)


def list_imagefolder(path: str | None) -> FolderListing:
    """Every non-hidden file under each class folder (sub-folders included), in natural order."""
    root = _check_root(path)
    classes = class_folders(path)
    files: list[tuple[str, int, int, int]] = []
    for index, name in enumerate(classes):
        found = []
        for folder, dirs, filenames in os.walk(root / name):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for filename in filenames:
                if filename.startswith("."):
                    continue
                full = os.path.join(folder, filename)
                try:
                    stat = os.stat(full)
                except OSError:  # a dangling link or an unreadable entry: a clear error, never a crash
                    rel = os.path.relpath(full, root).replace(os.sep, "/")
                    raise DataError(
                        f"'{rel}' is a broken link or cannot be read",
                        hint="remove it from the folder, or point the link at an existing file",
                    ) from None
                found.append(
                    (os.path.relpath(full, root).replace(os.sep, "/"), index, stat.st_size, stat.st_mtime_ns)
                )
        files.extend(sorted(found, key=lambda f: natural_key(f[0])))
    if not files:
        raise DataError(
            f"the class folders of '{root}' hold no files ({', '.join(classes[:5])}...)",
            hint="put the images in one sub-folder per class",
        )
    _check_layout(path, root, classes)
    return FolderListing(root=root, classes=classes, files=files)


def _shown(names: list[str], most: int = 5) -> str:
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def _check_layout(given: str | None, root: Path, classes: list[str]) -> None:
    """A DataError when the class folders only hold folders that look like classes themselves
    (or the only class folder holds only folders): data.path is one level too high.

    Args:
        given: data.path as the user wrote it (messages name it, never the resolved path).
    """
    where = given or str(root)

    def inner_folders(name: str) -> list[str]:
        with os.scandir(root / name) as entries:
            items = [e for e in entries if not e.name.startswith(".")]
        if any(e.is_file() for e in items):
            return []
        return sorted((e.name for e in items if e.is_dir()), key=natural_key)

    nested = {name: inner_folders(name) for name in classes}
    if all(nested.values()):  # no class folder holds a file itself: they look like datasets or splits
        first = classes[0]
        common = sorted(set.intersection(*(set(v) for v in nested.values())), key=natural_key)
        if len(classes) == 1 or len(common) >= 2:
            raise DataError(
                f"the class folder{'s' if len(classes) > 1 else ''} {_shown(classes)} of '{where}' "
                f"hold{'' if len(classes) > 1 else 's'} only folders ({_shown(nested[first])})",
                hint=f"data.path looks one folder too high; try data.path={Path(where) / first}",
            )


def load_imagefolder(
    cfg: DataConfig, *, listing: FolderListing | None = None, workers: int | None = None
) -> RawData:
    """Decode every image of the folder in memory; files that cannot be decoded are skipped with a reason.

    Args:
        cfg: the data section (path, size, channels).
        listing: the folder's listing when the caller already has it.
        workers: decoding threads (None: the default pool).
    """
    listing = listing or list_imagefolder(cfg.path)
    size, channels = image_size(cfg), image_channels(cfg)
    paths = [listing.root / rel for rel, *_ in listing.files]
    images, decoded, failed = decode_many(paths, size, channels, workers=workers)
    return _folder_data(listing, images, decoded, failed)


def import_imagefolder(
    cfg: DataConfig,
    x_path: Path,
    *,
    listing: FolderListing | None = None,
    workers: int | None = None,
    chunk_bytes: int = IMPORT_CHUNK_BYTES,
) -> RawData:
    """Decode the folder chunk by chunk into ``x_path``, a uint8 ``(N, C, H, W)`` ``.npy``.

    Memory stays that of one chunk (``chunk_bytes`` of decoded pixels) whatever the folder's size:
    each chunk is decoded, written and dropped. A progress bar shows on a terminal. The returned
    ``x`` is numpy's memory map of the finished file.

    Args:
        cfg: the data section (path, size, channels).
        x_path: the file to write (the cache entry's temporary folder).
        listing: the folder's listing when the caller already has it.
        workers: decoding threads (None: chosen from the files' sizes).
        chunk_bytes: decoded bytes per chunk.
    """
    listing = listing or list_imagefolder(cfg.path)
    size, channels = image_size(cfg), image_channels(cfg)
    paths = [listing.root / rel for rel, *_ in listing.files]
    workers = choose_workers(paths) if workers is None else workers
    step = max(16, chunk_bytes // (channels * size[0] * size[1]))
    writer = RowWriter(x_path, (channels, *size), np.uint8, len(paths))
    decoded: list[int] = []
    failed: list[tuple[int, str]] = []
    return_large_blocks()
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        with import_progress(len(paths), f"importing {listing.root.name}") as advance:
            for start in range(0, len(paths), step):
                part = paths[start : start + step]
                images, ok, bad = decode_many(part, size, channels, workers=workers, pool=pool)
                writer.append(images)
                decoded.extend(start + i for i in ok)
                failed.extend((start + i, reason) for i, reason in bad)
                del images
                release_freed_memory()
                advance(len(part))
    except BaseException:
        writer.abort()
        raise
    finally:
        if pool is not None:
            pool.shutdown()
    writer.close()
    return _folder_data(listing, np.load(x_path, mmap_mode="r"), decoded, failed)


def _folder_data(
    listing: FolderListing, images: np.ndarray, decoded: list[int], failed: list[tuple[int, str]]
) -> RawData:
    if not decoded:
        first = listing.files[failed[0][0]][0]
        raise DataError(
            f"none of the {len(listing.files)} files in '{listing.root}' could be decoded (first: {first}: {failed[0][1]})",
            hint="the folder should hold images (PNG, JPEG ...) in one sub-folder per class",
        )
    labels = np.array([listing.files[i][1] for i in decoded], dtype=np.int64)
    return RawData(
        x=images,
        y=labels,
        classes=list(listing.classes),
        kind="image",
        paths=[listing.files[i][0] for i in decoded],
        skipped=[(listing.files[i][0], reason) for i, reason in failed],
        named_classes=True,
    )
