"""On-disk cache of decoded sources, keyed by a content hash; writes are atomic (temp + rename).

An entry is a folder ``<cache_dir>/<key>/`` with ``x.npy``, ``y.npy`` (and ``test_mask.npy``)
plus ``meta.json`` (classes, paths, skipped files). The folder is built under a temporary
name and renamed into place, so a reader never sees half an entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from layerlab.data.sources.base import RawData

CACHE_VERSION = 1  # bump when the decoded format changes: old entries are then never hit


def default_cache_dir() -> Path:
    """``$LAYERLAB_HOME/cache`` (``LAYERLAB_HOME`` defaults to ``./.layerlab``)."""
    return Path(os.environ.get("LAYERLAB_HOME", ".layerlab")).expanduser() / "cache"


def cache_key(fingerprint: dict) -> str:
    """A sha256 of the fingerprint (file list with sizes and mtimes, decoding options)."""
    text = json.dumps({"version": CACHE_VERSION, **fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cache_load(cache_dir: Path, key: str) -> RawData | None:
    """The cached entry, or None when it is missing or unreadable (then it is rebuilt)."""
    entry = Path(cache_dir) / key
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        # mmap: the reload costs a few page faults, not a copy of the whole array
        x = np.load(entry / "x.npy", mmap_mode="r")
        y = np.load(entry / "y.npy")
        mask = np.load(entry / "test_mask.npy") if meta.get("has_test_mask") else None
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None
    return RawData(
        x=x,
        y=y,
        classes=meta["classes"],
        kind=meta["kind"],
        paths=meta["paths"],
        skipped=[tuple(s) for s in meta["skipped"]],
        named_classes=meta["named_classes"],
        test_mask=mask,
    )


def cache_save(cache_dir: Path, key: str, raw: RawData) -> None:
    """Write an entry atomically; a concurrent writer of the same key simply wins."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / key
    if final.exists():
        return
    temp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_dir))
    try:
        np.save(temp / "x.npy", np.ascontiguousarray(raw.x))
        np.save(temp / "y.npy", raw.y)
        if raw.test_mask is not None:
            np.save(temp / "test_mask.npy", raw.test_mask)
        meta = {
            "classes": raw.classes,
            "kind": raw.kind,
            "paths": raw.paths,
            "skipped": [list(s) for s in raw.skipped],
            "named_classes": raw.named_classes,
            "has_test_mask": raw.test_mask is not None,
        }
        (temp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        for name in os.listdir(temp):
            with open(temp / name, "rb") as handle:
                os.fsync(handle.fileno())
        os.rename(temp, final)
    except OSError:
        pass  # another process renamed first, or the disk is read-only: the cache is an optimisation only
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
