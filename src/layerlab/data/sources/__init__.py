"""Sources of examples: built-in generators and importers, dispatched by ``data.source``.

``load_raw(cfg, seed)`` decodes a source into ``RawData``; ``source_fingerprint(cfg)`` describes
the files it would read (names and a hash of their bytes) for the cache key, or None for generators.
"""

from __future__ import annotations

from layerlab.data.config import DataConfig
from layerlab.data.sources.arrays import array_files, load_arrays
from layerlab.data.sources.base import RawData
from layerlab.data.sources.csvfile import csv_file, load_csv
from layerlab.data.sources.generators import digits, not_so_clevr, spiral
from layerlab.data.sources.imagefolder import image_channels, image_size, list_imagefolder, load_imagefolder
from layerlab.data.sources.mnist import load_mnist
from layerlab.data.sources.video import repetition_counting
from layerlab.data.sources.videofolder import framefolder_fingerprint, load_framefolder

GENERATED = ("spiral", "digits", "mnist", "not-so-clevr", "repetition-counting")


def load_raw(cfg: DataConfig, *, seed: int) -> RawData:
    """Decode every example of the source (no limit, no split).

    Args:
        cfg: the data section.
        seed: seeds the generators (spiral's noise, not-so-clevr's uniform split).
    """
    if cfg.source == "spiral":
        return spiral(cfg, seed)
    if cfg.source == "digits":
        return digits(cfg, seed)
    if cfg.source == "mnist":
        return load_mnist(cfg, seed)
    if cfg.source == "not-so-clevr":
        return not_so_clevr(cfg, seed)
    if cfg.source == "imagefolder":
        return load_imagefolder(cfg)
    if cfg.source == "repetition-counting":
        return repetition_counting(cfg, seed)
    if cfg.source == "framefolder":
        return load_framefolder(cfg)
    if cfg.source in ("npz", "npy"):
        return load_arrays(cfg)
    if cfg.source == "csv":
        return load_csv(cfg)
    raise AssertionError(f"unhandled source {cfg.source}")  # DataConfig.validate rejects the rest


def source_fingerprint(cfg: DataConfig) -> dict | None:
    """What the decoded arrays depend on: the files (names, content digest) and the decoding options."""
    if cfg.source in GENERATED:
        return None
    from layerlab.data.cache import content_digest  # cache imports this package's RawData

    options = {
        "source": cfg.source,
        "label_column": cfg.label_column,
        "label_map": {str(k): v for k, v in (cfg.label_map or {}).items()},
        "class_names": cfg.class_names,
    }
    if cfg.ignore_columns:  # csv columns left out of the features
        options["ignore_columns"] = list(cfg.ignore_columns)
    if cfg.source == "framefolder":
        return framefolder_fingerprint(cfg, options)
    if cfg.source == "imagefolder":
        listing = list_imagefolder(cfg.path)
        options.update(
            size=list(image_size(cfg)), channels=image_channels(cfg), root=str(listing.root.resolve())
        )
        options["files"] = [[rel, label] for rel, label, *_ in listing.files]
        options["content"] = content_digest([(rel, listing.root / rel) for rel, *_ in listing.files])
        return options
    files = array_files(cfg) if cfg.source in ("npz", "npy") else [csv_file(cfg)]
    options.update(size=cfg.size, channels=cfg.channels, layout=cfg.layout, steps=cfg.steps)
    options["files"] = [str(f.resolve()) for f in files]
    options["content"] = content_digest([(f.name, f) for f in files])
    return options


__all__ = ["GENERATED", "RawData", "load_raw", "source_fingerprint"]
