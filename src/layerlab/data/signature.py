"""The input shape and class count a data section gives, known before any example is decoded.

``config_signature(cfg)`` answers from the config (size and channels of an image folder, the
fixed shapes of the generators) and from cheap reads: an image folder's listing, the header of
an ``.npy`` array (inside an ``.npz`` too) and its label array. A run checks its network against
it before importing the data, so a shape error on 10,000 images comes at once, not after
decoding them. CSV files are only known once read: the answer is then None.
"""

from __future__ import annotations

import zipfile

import numpy as np

from layerlab.core.errors import DataError
from layerlab.data.config import DataConfig
from layerlab.data.layout import layout_of
from layerlab.data.limits import npy_header
from layerlab.data.sources.arrays import X_NAMES, Y_NAMES, array_files
from layerlab.data.sources.base import labels_from_array, resolve_classes
from layerlab.data.sources.generators import CANVAS, COORDINATE_NAMES, SPIRAL_DEFAULTS
from layerlab.data.sources.imagefolder import image_channels, image_size, list_imagefolder
from layerlab.data.sources.videofolder import video_signature
from layerlab.data.videoconfig import VIDEO_SOURCES

Signature = tuple[tuple[int, ...], int]


def _npz_member(archive: zipfile.ZipFile, names: tuple[str, ...]) -> str | None:
    members = set(archive.namelist())
    for name in names:
        if f"{name}.npy" in members:
            return f"{name}.npy"
    return None


def _array_header_and_labels(cfg: DataConfig) -> tuple[tuple[int, ...], np.ndarray, str] | None:
    """X's shape (from its header alone), the labels, and where they come from; None when unreadable."""
    files = array_files(cfg)
    try:
        if cfg.source == "npz":
            with zipfile.ZipFile(files[0]) as archive:
                x_name, y_name = _npz_member(archive, X_NAMES), _npz_member(archive, Y_NAMES)
                if x_name is None or y_name is None:
                    return None  # the importer says what is missing
                with archive.open(x_name) as member:
                    shape, _ = npy_header(member)
            with np.load(files[0], allow_pickle=False) as loaded:
                y = np.asarray(loaded[y_name[: -len(".npy")]])
            return shape, y, f"{files[0].name}:{y_name[: -len('.npy')]}"
        with open(files[0], "rb") as handle:
            shape, _ = npy_header(handle)
        return shape, np.load(files[1], allow_pickle=False), files[1].name
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None  # the importer gives the full error when the run reads the file


def one_class_error(cfg: DataConfig, classes: list[str]) -> DataError:
    """The DataError for data with fewer than 2 classes: nothing for a classifier to learn."""
    if cfg.source == "imagefolder":
        hint = "point data.path at the folder that holds one sub-folder per class (at least 2)"
    else:
        hint = "check the labels, data.label_map and data.class_names"
    found = f"one class ({classes[0]})" if classes else "no class"
    return DataError(f"{cfg.source}:{cfg.path or ''} gives {found}; a classifier needs at least 2", hint=hint)


def config_signature(cfg: DataConfig) -> Signature | None:
    """``(shape of one example, number of classes)`` without decoding, or None when not known yet
    (``data.select.classes`` keeps that many classes of the source's)."""
    signature = source_signature(cfg)
    if signature is not None and cfg.select is not None and cfg.select.classes:
        return signature[0], len(cfg.select.classes)
    return signature


def source_signature(cfg: DataConfig) -> Signature | None:
    """``(shape of one example, number of classes)`` of the whole source, or None when not known yet.

    Args:
        cfg: the data section (a checked DataConfig).

    Raises:
        DataError: what the listing or the headers already show is wrong (a missing path, an
            image folder one level too high, arrays of a shape no layout reads).
    """
    if cfg.source == "spiral":
        default = SPIRAL_DEFAULTS["classes"] if cfg.classes is None else cfg.classes
        classes = len(cfg.class_names) if cfg.class_names else default
        return (2,), classes
    if cfg.source == "digits":
        return (1, 8, 8), 10
    if cfg.source == "mnist":
        return (1, 28, 28), 10
    if cfg.source == "not-so-clevr":
        if cfg.target == "coordinates":  # the one-hot image in, (i, j) / 64 out
            return (1, CANVAS, CANVAS), len(COORDINATE_NAMES)
        return (2,), CANVAS * CANVAS
    if cfg.source in VIDEO_SOURCES:
        return video_signature(cfg)
    if cfg.source == "imagefolder":
        height, width = image_size(cfg)
        classes = list_imagefolder(cfg.path).classes
        if len(classes) < 2:
            raise one_class_error(cfg, classes)
        return (image_channels(cfg), height, width), len(classes)
    if cfg.source in ("npz", "npy"):
        found = _array_header_and_labels(cfg)
        if found is None:
            return None
        x_shape, y, y_where = found
        kind, shape, _ = layout_of(x_shape, cfg.layout, cfg.steps, "data.path")
        if kind == "image":
            channels = cfg.channels or shape[0]
            shape = (channels, *(tuple(cfg.size) if cfg.size else shape[1:]))
        try:
            labels = labels_from_array(y, y_where)
            _, classes = resolve_classes(
                labels, label_map=cfg.label_map, class_names=cfg.class_names, where=y_where
            )
        except DataError:
            return None  # the importer reports bad labels with the rows
        return tuple(int(d) for d in shape), len(classes)
    return None
