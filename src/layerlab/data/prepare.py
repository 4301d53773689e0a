"""Readying a run's data: decode (or reload from cache), limit, split, normalize on train only.

``prepare_data`` is what training calls; ``input_signature`` answers "what shape, how many
classes" without decoding (``layerlab.data.signature``); ``load_evaluation_data`` readies new data with a finished run's
own preprocessing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from layerlab.core.errors import DataError
from layerlab.data.cache import cache_build, cache_key, cache_load, cache_save, default_cache_dir
from layerlab.data.config import ARRAY_SOURCES, DataConfig
from layerlab.data.preprocess import Preprocessing
from layerlab.data.report import DataReport, class_counts
from layerlab.data.select import noisy_labels, selection
from layerlab.data.signature import config_signature, one_class_error
from layerlab.data.sources import load_raw, source_fingerprint
from layerlab.data.sources.arrays import conform_images
from layerlab.data.sources.base import RawData
from layerlab.data.sources.imagefolder import import_imagefolder
from layerlab.data.splits import fixed_test_split, split_indices, stratified_subset
from layerlab.data.store import RowReader, return_large_blocks
from layerlab.data.views import SplitView

MANY_CLASSES = 50  # generated class lists longer than this are not counted one by one in reports


@dataclass
class PreparedData:
    """Normalized float32 inputs and int64 labels per split, plus what produced them.

    The inputs of decoded uint8 images are ``SplitView``s (rows read, converted and normalized when
    indexed; ``SplitView.materialize()`` gives the tensor), those of float sources whole tensors.
    """

    train_x: torch.Tensor | SplitView
    train_y: torch.Tensor
    val_x: torch.Tensor | SplitView
    val_y: torch.Tensor
    test_x: torch.Tensor | SplitView
    test_y: torch.Tensor
    classes: list[str]
    input_shape: tuple[int, ...]
    preprocessing: Preprocessing
    report: DataReport
    train_index: np.ndarray | None = None  # each training example's position among the source's examples
    source_examples: int | None = None  # how many examples the source gave (before select and limit)


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
    if cfg.source == "imagefolder":  # decoded chunk by chunk into the entry: memory stays flat
        built = cache_build(directory, key, lambda folder: import_imagefolder(cfg, folder / "x.npy"))
        if built is not None:
            return built, "miss"
    raw = load_raw(cfg, seed=seed)
    cache_save(directory, key, raw)
    return raw, "miss"


def read_in_batches(raw: RawData) -> bool:
    """Whether a source's splits are read batch by batch (``SplitView``): decoded uint8 images.

    Float sources (generated vectors, digits, CSV) are small and stay whole float32 tensors, the
    fastest path for tiny networks.
    """
    return raw.kind == "image" and raw.x.dtype == np.uint8


def _limited(raw: RawData, keep: np.ndarray) -> tuple[RawData, np.ndarray]:
    """``raw`` limited to ``keep``, and the kept examples' rows in the returned ``raw.x``.

    Images read in batches keep their whole ``x`` (a memory map is never copied): only the labels,
    paths and mask are cut, and the rows say where each kept example is.
    """
    if not read_in_batches(raw):
        return raw.take(keep), np.arange(len(keep))
    return (
        replace(
            raw,
            y=raw.y[keep],
            paths=[raw.paths[i] for i in keep] if raw.paths is not None else None,
            test_mask=raw.test_mask[keep] if raw.test_mask is not None else None,
        ),
        np.asarray(keep, dtype=np.int64),
    )


def has_values(raw: RawData) -> bool:
    """Whether a source gives float targets ``y (N, K)`` to regress (its ``classes`` name the K values)."""
    return raw.y.dtype.kind == "f"


def strata(raw: RawData) -> np.ndarray:
    """The labels splits and limits stratify on: the classes, or one stratum for regression values."""
    return np.zeros(len(raw.y), dtype=np.int64) if has_values(raw) else raw.y


def _narrowed(raw: RawData, cfg: DataConfig, seed: int) -> tuple[RawData, np.ndarray, np.ndarray]:
    """``data.select`` then ``data.limit`` applied: ``(raw, rows, origin)`` with ``rows`` each kept
    example's row in the returned ``raw.x`` and ``origin`` its position among the source's examples."""
    rows = np.arange(len(raw.y))
    origin = np.arange(len(raw.y))
    wants_classes = (cfg.select is not None and cfg.select.classes) or cfg.label_noise > 0
    if wants_classes and has_values(raw):
        raise DataError("select.classes and label_noise need class labels, not values", where="data")
    if cfg.select is not None:
        keep, labels, classes = selection(raw.y, raw.classes, raw.paths, cfg.select)
        raw, kept_rows = _limited(raw, keep)
        if cfg.select.classes:
            raw = replace(raw, y=labels, classes=classes, named_classes=True)
            if len(np.unique(raw.y)) < 2:
                raise DataError("data.select keeps examples of fewer than 2 classes", where="data.select")
        rows, origin = rows[kept_rows], origin[keep]
    if cfg.limit is not None:
        if cfg.limit < 1:
            raise DataError(f"limit must be at least 1, not {cfg.limit}", where="data.limit")
        keep = stratified_subset(strata(raw), cfg.limit, seed)
        raw, kept_rows = _limited(raw, keep)
        rows, origin = rows[kept_rows], origin[keep]
    return raw, rows, origin


def _check_classes(raw: RawData, cfg: DataConfig) -> None:
    """A DataError for data no classifier can learn from: one class, or class folders without images."""
    if has_values(raw):
        return
    if len(raw.classes) < 2:
        raise one_class_error(cfg, raw.classes)
    if cfg.source == "imagefolder":
        present = np.bincount(raw.y, minlength=len(raw.classes))
        empty = [name for name, n in zip(raw.classes, present, strict=True) if not n]
        if empty:
            raise DataError(
                f"{len(empty)} class folder(s) hold no image that could be decoded: "
                + ", ".join(empty[:5])
                + (", ..." if len(empty) > 5 else ""),
                hint="put images (PNG, JPEG ...) in every class folder, or remove the empty ones",
                where=describe(cfg),
            )


def _counts(raw: RawData, split: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    if has_values(raw):  # regression values: no classes to count
        return {name: {"examples": len(idx)} for name, idx in split.items()}
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
    _check_classes(raw, cfg)
    source_examples = len(raw.y)
    raw, rows, origin = _narrowed(raw, cfg, seed)  # rows: where each example is in raw.x
    if raw.test_mask is not None:
        train, val, test = fixed_test_split(raw.test_mask, cfg.split.val, seed)
    else:
        train, val, test = split_indices(strata(raw), cfg.split, seed=seed, paths=raw.paths)
    batched = read_in_batches(raw)
    if batched:
        return_large_blocks()
    source = raw.reader if batched and raw.reader is not None else raw.x
    read = source.rows if isinstance(source, RowReader) else None
    # uint8 images: one streaming pass of exact per-channel histograms (never a copy of the split)
    preprocessing = Preprocessing.fit(
        raw.x, index=rows[train], read=read, kind=raw.kind, normalize=cfg.normalize, classes=raw.classes
    )

    label_dtype = np.float32 if has_values(raw) else np.int64

    def part(index: np.ndarray) -> tuple[torch.Tensor | SplitView, torch.Tensor]:
        y = torch.from_numpy(np.ascontiguousarray(raw.y[index], dtype=label_dtype))
        if batched:  # converted, normalized (and augmented by the trainer) batch by batch
            return SplitView(source, rows[index], preprocessing), y
        x = preprocessing.apply(raw.x[index]) if len(index) else torch.empty((0, *preprocessing.input_shape))
        return x, y

    (train_x, train_y), (val_x, val_y), (test_x, test_y) = part(train), part(val), part(test)
    if cfg.label_noise > 0:  # the training labels only: validation and test measure the true task
        train_y = torch.from_numpy(noisy_labels(train_y.numpy(), cfg.label_noise, len(raw.classes), seed))
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
        train_index=origin[train],
        source_examples=source_examples,
    )


@dataclass
class HeldOutExamples:
    """Some examples of a run's test split, unnormalized (``x`` uint8 ``(N, C, H, W)`` for images)."""

    positions: np.ndarray  # in the test split
    x: np.ndarray
    y: np.ndarray
    kind: str
    classes: list[str]
    paths: list[str] | None  # relative to the source's path (None for generators and arrays)
    test_size: int


def held_out_examples(
    cfg: DataConfig, *, seed: int, positions, cache_dir: Path | None = None
) -> HeldOutExamples:
    """The test split's examples at ``positions``, rebuilt as ``prepare_data`` splits (same seed and steps).

    Args:
        cfg: the run's data section.
        seed: the run's experiment seed.
        positions: indices into the test split (those out of range are dropped).
        cache_dir: the decoded-source cache (default ``$LAYERLAB_HOME/cache``).
    """
    raw, _ = load_source(cfg, seed=seed, cache_dir=cache_dir)
    raw, rows, _ = _narrowed(raw, cfg, seed)
    if raw.test_mask is not None:
        _, _, test = fixed_test_split(raw.test_mask, cfg.split.val, seed)
    else:
        _, _, test = split_indices(strata(raw), cfg.split, seed=seed, paths=raw.paths)
    positions = np.asarray([p for p in positions if 0 <= p < len(test)], dtype=np.int64)
    index = test[positions]
    return HeldOutExamples(
        positions=positions,
        x=np.asarray(raw.x[rows[index]]),
        y=raw.y[index],
        kind=raw.kind,
        classes=list(raw.classes),
        paths=[raw.paths[i] for i in index] if raw.paths is not None else None,
        test_size=len(test),
    )


def input_signature(cfg: DataConfig) -> tuple[tuple[int, ...], int]:
    """Input shape and number of classes, without decoding images or generating data.

    Known from the config and headers (``config_signature``) for every source but CSV, which is
    read whole (as are arrays whose headers cannot be read).

    Args:
        cfg: the data section.
    """
    signature = config_signature(cfg)
    if signature is not None:
        return signature
    raw = load_raw(cfg, seed=0)
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
    from layerlab.data.config import source_hint

    if sep:
        raise DataError(f"unknown data source '{kind}'", hint=source_hint(kind, f":{path}"))
    raise DataError(
        f"cannot read data source '{source}'",
        hint="write kind:path, e.g. imagefolder:/data/photos, or a YAML/JSON file with a data section",
    )


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
    if preprocessing.kind == "video" and cfg.source == "framefolder":  # frames decoded as the run's were
        cfg = replace(cfg, size=list(preprocessing.size), channels=preprocessing.channels)
    if cfg.source in ARRAY_SOURCES and cfg.layout == "auto" and preprocessing.kind != "image":
        # read the arrays the way the run's were: (T, F) sequences, or vectors whatever X's rank
        layout = "sequence" if preprocessing.kind == "sequence" else "flat"
        cfg = replace(cfg, layout=layout, steps=preprocessing.steps if layout == "sequence" else None)
    raw, _ = load_source(replace(cfg, limit=None), seed=0, cache_dir=cache_dir)
    where = describe(cfg)
    if raw.kind != preprocessing.kind:
        raise DataError(f"this source gives {raw.kind}s but the run takes {preprocessing.kind}s", where=where)
    x = raw.x
    if raw.kind == "image":
        x = conform_images(np.asarray(x), tuple(preprocessing.size), preprocessing.channels)
    if has_values(raw):  # regression values, as they are
        return preprocessing.apply(x), torch.from_numpy(raw.y.astype(np.float32)), list(preprocessing.classes)
    y = _class_index(raw, preprocessing.classes, where)[raw.y]
    return preprocessing.apply(x), torch.from_numpy(y), list(preprocessing.classes)
