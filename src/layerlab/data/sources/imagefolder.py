"""The ``imagefolder`` importer: one sub-folder per class, images decoded, resized and converted."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from layerlab.core.errors import DataError
from layerlab.data.config import DataConfig
from layerlab.data.decode import decode_many
from layerlab.data.sources.base import RawData, natural_key

DEFAULT_SIZE = (64, 64)
DEFAULT_CHANNELS = 1


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
                stat = os.stat(full)
                found.append(
                    (os.path.relpath(full, root).replace(os.sep, "/"), index, stat.st_size, stat.st_mtime_ns)
                )
        files.extend(sorted(found, key=lambda f: natural_key(f[0])))
    if not files:
        raise DataError(
            f"the class folders of '{root}' hold no files ({', '.join(classes[:5])}...)",
            hint="put the images in one sub-folder per class",
        )
    return FolderListing(root=root, classes=classes, files=files)


def load_imagefolder(
    cfg: DataConfig, *, listing: FolderListing | None = None, workers: int | None = None
) -> RawData:
    """Decode every image of the folder; files that cannot be decoded are skipped with a reason.

    Args:
        cfg: the data section (path, size, channels).
        listing: the folder's listing when the caller already has it.
        workers: decoding threads (None: the default pool).
    """
    listing = listing or list_imagefolder(cfg.path)
    size, channels = image_size(cfg), image_channels(cfg)
    paths = [listing.root / rel for rel, *_ in listing.files]
    images, decoded, failed = decode_many(paths, size, channels, workers=workers)
    if not decoded:
        first = listing.files[failed[0][0]][0]
        raise DataError(
            f"none of the {len(paths)} files in '{listing.root}' could be decoded (first: {first}: {failed[0][1]})",
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
