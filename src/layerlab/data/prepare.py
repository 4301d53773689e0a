"""Readying a run's data: decode (or reload from cache), limit, split, normalize on train only.

``prepare_data`` is what training calls; ``input_signature`` answers "what shape, how many
classes" without decoding; ``load_evaluation_data`` readies new data with a finished run's
own preprocessing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from layerlab.core.errors import DataError
from layerlab.data.cache import cache_key, cache_load, cache_save, default_cache_dir
from layerlab.data.config import DataConfig
from layerlab.data.preprocess import Preprocessing
from layerlab.data.report import DataReport, class_counts
from layerlab.data.sources import load_raw, source_fingerprint
from layerlab.data.sources.arrays import conform_images
from layerlab.data.sources.base import RawData
from layerlab.data.sources.generators import CANVAS
from layerlab.data.sources.imagefolder import class_folders, image_channels, image_size
from layerlab.data.splits import fixed_test_split, split_indices, stratified_subset

MANY_CLASSES = 50  # generated class lists longer than this are not counted one by one in reports


@dataclass
class PreparedData:
    """Normalized float32 inputs and int64 labels per split, plus what produced them."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    input_shape: tuple[int, ...]
    preprocessing: Preprocessing
    report: DataReport


def describe(cfg: DataConfig) -> str:
    """``kind:path`` (or ``kind:``), as the CLI accepts it."""
    return f"{cfg.source}:{cfg.path or ''}"


def load_source(cfg: DataConfig, *, seed: int, cache_dir: Path | None = None) -> tuple[RawData, str]:
    """Decode a source, through the on-disk cache for file sources.

    Returns:
        ``(raw, cache)`` where cache is "hit", "miss" or "off".
    """
    fingerprint = source_fingerprint(cfg)
    if fingerprint is None:
        return load_raw(cfg, seed=seed), "off"
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(fingerprint)
    cached = cache_load(directory, key)
    if cached is not None:
        return cached, "hit"
    raw = load_raw(cfg, seed=seed)
    cache_save(directory, key, raw)
    return raw, "miss"


def _counts(raw: RawData, split: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    keep_empty = len(raw.classes) <= MANY_CLASSES
    return {name: class_counts(raw.y[idx], raw.classes, keep_empty=keep_empty) for name, idx in split.items()}


def prepare_data(cfg: DataConfig, *, seed: int, cache_dir: Path | None = None) -> PreparedData:
    """Decode, limit, split and normalize the data of a run.

    Args:
        cfg: the data section of the experiment config.
        seed: the experiment seed (generators, limit, random and group splits).
        cache_dir: where decoded sources are cached (default ``$LAYERLAB_HOME/cache``).
    """
    start = time.perf_counter()
    raw, cache = load_source(cfg, seed=seed, cache_dir=cache_dir)
    if cfg.limit is not None:
        if cfg.limit < 1:
            raise DataError(f"limit must be at least 1, not {cfg.limit}", where="data.limit")
        raw = raw.take(stratified_subset(raw.y, cfg.limit, seed))
    if raw.test_mask is not None:
        train, val, test = fixed_test_split(raw.test_mask, cfg.split.val, seed)
    else:
        train, val, test = split_indices(raw.y, cfg.split, seed=seed, paths=raw.paths)
    preprocessing = Preprocessing.fit(
        raw.x[train], kind=raw.kind, normalize=cfg.normalize, classes=raw.classes
    )

    def part(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = preprocessing.apply(raw.x[index]) if len(index) else torch.empty((0, *preprocessing.input_shape))
        return x, torch.from_numpy(np.ascontiguousarray(raw.y[index], dtype=np.int64))

    (train_x, train_y), (val_x, val_y), (test_x, test_y) = part(train), part(val), part(test)
    report = DataReport(
        source=describe(cfg),
        kind=raw.kind,
        input_shape=preprocessing.input_shape,
        classes=raw.classes,
        counts=_counts(raw, {"train": train, "val": val, "test": test}),
        skipped=list(raw.skipped),
        cache=cache,
        seconds=time.perf_counter() - start,
        limit=cfg.limit,
    )
    return PreparedData(
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=test_x,
        test_y=test_y,
        classes=raw.classes,
        input_shape=preprocessing.input_shape,
        preprocessing=preprocessing,
        report=report,
    )


def input_signature(cfg: DataConfig) -> tuple[tuple[int, ...], int]:
    """Input shape and number of classes, without decoding images or generating data.

    Args:
        cfg: the data section.
    """
    if cfg.source == "spiral":
        return (2,), len(cfg.class_names) if cfg.class_names else (cfg.classes or 3)
    if cfg.source == "digits":
        return (1, 8, 8), 10
    if cfg.source == "not-so-clevr":
        return (2,), CANVAS * CANVAS
    if cfg.source == "imagefolder":
        height, width = image_size(cfg)
        return (image_channels(cfg), height, width), len(class_folders(cfg.path))
    raw = load_raw(cfg, seed=0)  # arrays and CSV files are read whole; npy inputs are memory-mapped
    return tuple(int(d) for d in raw.x.shape[1:]), len(raw.classes)


def _read_data_section(path: Path) -> dict:
    """The ``data`` mapping of a YAML or JSON experiment file."""
    from layerlab.core.mappingfile import read_mapping

    mapping = read_mapping(path, what="a mapping with a 'data' section")
    if not isinstance(mapping.get("data"), dict):
        raise DataError("has no 'data' section", hint="add data: {source: ..., path: ...}", where=str(path))
    return mapping["data"]


def parse_source(source: str | DataConfig) -> DataConfig:
    """A DataConfig from ``kind:path`` (``digits:``, ``imagefolder:/data/photos``) or a YAML file.

    Args:
        source: ``kind:path``, a YAML/JSON file with a ``data`` section, or a DataConfig.
    """
    if isinstance(source, DataConfig):
        return source
    from layerlab.core.configtree import from_mapping
    from layerlab.data.config import SOURCES

    kind, sep, path = source.partition(":")
    if sep and kind in SOURCES:
        return from_mapping(DataConfig, {"source": kind, "path": path or None}, "data")
    if Path(source).is_file() and Path(source).suffix in (".yaml", ".yml", ".json"):
        return from_mapping(DataConfig, _read_data_section(Path(source)), "data")
    from layerlab.core.configtree import suggest

    close = suggest(kind, SOURCES) if sep else None
    hint = (
        f"did you mean '{close}:{path}'?"
        if close
        else "write kind:path, e.g. imagefolder:/data/photos, or a YAML file"
    )
    raise DataError(f"cannot read data source '{source}'", hint=hint)


def _class_index(raw: RawData, run_classes: list[str], where: str) -> np.ndarray:
    """For every class of ``raw``, its index among the run's classes."""
    known = {name: i for i, name in enumerate(run_classes)}
    if all(name in known for name in raw.classes):
        return np.array([known[name] for name in raw.classes], dtype=np.int64)
    if raw.named_classes:
        unknown = next(name for name in raw.classes if name not in known)
        shown = ", ".join(run_classes[:12]) + (" ..." if len(run_classes) > 12 else "")
        raise DataError(
            f"class '{unknown}' is not one of the run's classes ({shown})",
            hint="evaluate on data with the run's classes (folder names must match)",
            where=where,
        )
    # numbered classes 0..K-1 whose names do not appear in the run: labels are taken as run indices
    if len(raw.classes) > len(run_classes):
        raise DataError(
            f"labels go up to {len(raw.classes) - 1} but the run has {len(run_classes)} classes", where=where
        )
    return np.arange(len(raw.classes), dtype=np.int64)


def load_evaluation_data(
    source: str | DataConfig, preprocessing: Preprocessing, *, cache_dir: Path | None = None
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Every example of ``source`` (no limit, no split), readied with a run's preprocessing.

    Args:
        source: ``kind:path``, a YAML file with a ``data`` section, or a DataConfig.
        preprocessing: the run's stored preprocessing (size, channels, statistics, classes).
        cache_dir: where decoded sources are cached (default ``$LAYERLAB_HOME/cache``).

    Returns:
        ``(x, y, classes)``: normalized inputs, labels as indices of the run's classes, and the
        run's class names.
    """
    cfg = parse_source(source)
    if preprocessing.kind == "image" and cfg.source in ("imagefolder", "npz", "npy"):
        cfg = replace(cfg, size=list(preprocessing.size), channels=preprocessing.channels)
    raw, _ = load_source(replace(cfg, limit=None), seed=0, cache_dir=cache_dir)
    where = describe(cfg)
    if raw.kind != preprocessing.kind:
        raise DataError(f"this source gives {raw.kind}s but the run takes {preprocessing.kind}s", where=where)
    x = raw.x
    if raw.kind == "image":
        x = conform_images(np.asarray(x), tuple(preprocessing.size), preprocessing.channels)
    y = _class_index(raw, preprocessing.classes, where)[raw.y]
    return preprocessing.apply(x), torch.from_numpy(y), list(preprocessing.classes)
