"""On-disk cache of decoded sources, keyed by a content hash; writes are atomic (temp + rename).

An entry is a folder ``<cache_dir>/<key>/`` with ``x.npy`` (uint8 ``(N, C, H, W)`` for images,
written chunk by chunk by ``cache_build``), ``y.npy`` (and ``test_mask.npy``) plus ``meta.json``
(classes, paths, skipped files). The folder is built under a temporary
name and renamed into place, so a reader never sees half an entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from layerlab.data.sources.base import RawData
from layerlab.data.store import RowReader

CACHE_VERSION = 2  # bump when the decoded format changes: old entries are then never hit


def default_cache_dir() -> Path:
    """``$LAYERLAB_HOME/cache`` (``LAYERLAB_HOME`` defaults to ``./.layerlab``)."""
    return Path(os.environ.get("LAYERLAB_HOME", ".layerlab")).expanduser() / "cache"


def content_digest(files: list[tuple[str, Path]], chunk: int = 1 << 20) -> str:
    """A blake2b of every file's name and bytes, read in 1 MiB chunks (memory stays flat).

    The bytes themselves, not sizes and mtimes: a file rewritten with other pixels but the
    same size and mtime (a copy tool that keeps times, ``os.utime``) gets another key.

    Args:
        files: ``(name, path)`` pairs; the name (relative to the source) is hashed, not the path.
    """
    digest = hashlib.blake2b(digest_size=20)
    for name, path in files:
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
        with open(path, "rb") as handle:
            length = 0
            while block := handle.read(chunk):
                digest.update(block)
                length += len(block)
        digest.update(b"\0" + str(length).encode() + b"\0")  # no two file lists share a byte stream
    return digest.hexdigest()


def cache_key(fingerprint: dict) -> str:
    """A sha256 of the fingerprint (the files' content digest, decoding options)."""
    text = json.dumps({"version": CACHE_VERSION, **fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cache_load(cache_dir: Path, key: str) -> RawData | None:
    """The cached entry, or None when it is missing or unreadable (then it is rebuilt)."""
    entry = Path(cache_dir) / key
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        # mmap: the reload costs a few page faults, not a copy of the whole array; training reads
        # batches through the reader (preadv: nothing mapped, resident memory stays a batch's)
        x = np.load(entry / "x.npy", mmap_mode="r")
        reader = RowReader(entry / "x.npy")
        y = np.load(entry / "y.npy")
        if len(y) != len(x):
            return None
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
        reader=reader,
    )


def cache_save(cache_dir: Path, key: str, raw: RawData) -> None:
    """Write an entry atomically; a concurrent writer of the same key simply wins."""

    def write_x(folder: Path) -> RawData:
        np.save(folder / "x.npy", np.ascontiguousarray(raw.x))
        return raw

    _build(Path(cache_dir), key, write_x)


def cache_build(cache_dir: Path, key: str, build: Callable[[Path], RawData]) -> RawData | None:
    """Build an entry whose ``x.npy`` is written by ``build(folder)`` itself (incrementally, memory
    bounded), and load it back: its ``x`` is then read from disk. None when the cache folder cannot
    be written (the caller decodes in memory instead); ``build``'s errors (DataError) propagate.

    Args:
        build: writes ``folder / "x.npy"`` and returns the rest of the data (labels, paths ...).
    """
    if not _build(Path(cache_dir), key, build):
        return None
    return cache_load(cache_dir, key)


def _build(cache_dir: Path, key: str, build: Callable[[Path], RawData]) -> bool:
    """Write an entry in a temporary folder and rename it into place; True when the entry exists after."""
    final = cache_dir / key
    if final.exists():
        return True
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_dir))
    except OSError:
        return False  # a read-only disk: the cache is an optimisation only
    try:
        raw = build(temp)
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
        pass  # another process renamed first, or the disk filled up: the cache is an optimisation only
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return final.exists()
