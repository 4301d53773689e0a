"""The ``npz`` and ``npy`` importers: arrays X (inputs) and y (labels) or one-hot Y.

``npz``: one ``.npz`` file holding ``X`` (or ``x``) and ``y`` (or one-hot ``Y``).
``npy``: a folder holding ``X.npy`` and ``Y.npy`` (or ``y.npy``), or the path of one of the two.
Inputs ``(N, F)`` are vectors; ``(N, H, W)``, ``(N, H, W, C)`` and ``(N, C, H, W)`` are images.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from layerlab.core.errors import DataError
from layerlab.data.config import DataConfig
from layerlab.data.sources.base import RawData, labels_from_array, resolve_classes

X_NAMES = ("X", "x")
Y_NAMES = ("y", "Y")


def _existing(path: str | None, what: str) -> Path:
    p = Path(path or "").expanduser()
    if not path or not p.exists():
        raise DataError(f"data path '{path}' does not exist", hint=f"check data.path; it should name {what}")
    return p


def array_files(cfg: DataConfig) -> list[Path]:
    """The files an npz/npy source reads (for the cache key)."""
    if cfg.source == "npz":
        path = _existing(cfg.path, "an .npz file with arrays X and y")
        if path.is_dir():
            raise DataError(
                f"'{path}' is a folder; source npz needs an .npz file", hint="use source npy for a folder"
            )
        return [path]
    path = _existing(cfg.path, "a folder holding X.npy and Y.npy")
    folder = path if path.is_dir() else path.parent

    def find(names: tuple[str, ...]) -> Path:
        for name in names:
            if (folder / f"{name}.npy").is_file():
                return folder / f"{name}.npy"
        raise DataError(
            f"no {' or '.join(n + '.npy' for n in names)} in '{folder}'",
            hint="an npy source is a folder holding X.npy and y.npy (labels) or Y.npy (one-hot)",
        )

    return [find(X_NAMES), find(Y_NAMES)]


def _read_arrays(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, str, str]:
    files = array_files(cfg)
    try:
        if cfg.source == "npz":
            with np.load(files[0], allow_pickle=False) as archive:
                keys = list(archive.keys())
                x_key = next((k for k in X_NAMES if k in keys), None)
                y_key = next((k for k in Y_NAMES if k in keys), None)
                if x_key is None or y_key is None:
                    raise DataError(
                        f"needs arrays X and y (or one-hot Y); it holds {', '.join(keys) or 'none'}",
                        hint="save with np.savez(path, X=inputs, y=labels)",
                        where=str(files[0]),
                    )
                return archive[x_key], archive[y_key], f"{files[0]}:{x_key}", f"{files[0]}:{y_key}"
        # mmap: reading a large X costs nothing until it is used
        return np.load(files[0], mmap_mode="r"), np.load(files[1]), str(files[0]), str(files[1])
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"cannot read arrays: {str(exc).splitlines()[0]}", where=str(cfg.path)) from None


def _images_nchw(x: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """Inputs as vectors ``(N, F)`` or images ``(N, C, H, W)``, and the kind."""
    if x.ndim == 2:
        return x, "vector"
    if x.ndim == 3:
        return x[:, None, :, :], "image"
    if x.ndim == 4:
        if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            return x.transpose(0, 3, 1, 2), "image"
        if x.shape[1] in (1, 3):
            return x, "image"
    raise DataError(
        f"inputs have shape {tuple(x.shape)}; expected (N, F), (N, H, W), (N, H, W, C) or (N, C, H, W) with C 1 or 3",
        where=where,
    )


def conform_images(x: np.ndarray, size: tuple[int, int] | None, channels: int | None) -> np.ndarray:
    """Resize ``(N, C, H, W)`` images and convert channels when they differ from what is asked."""
    import torch
    import torch.nn.functional as F

    if channels is not None and x.shape[1] != channels:
        if channels == 1:  # ITU-R 601-2 luma, as Pillow's convert("L")
            weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)[None, :, None, None]
            gray = (x.astype(np.float32) * weights).sum(axis=1, keepdims=True)
            x = np.round(gray).astype(np.uint8) if x.dtype == np.uint8 else gray
        else:
            x = np.repeat(x, 3, axis=1)
    if size is not None and tuple(x.shape[2:]) != tuple(size):
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        t = F.interpolate(t, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
        x = t.round().clamp(0, 255).to(torch.uint8).numpy() if x.dtype == np.uint8 else t.numpy()
    return x


def load_arrays(cfg: DataConfig) -> RawData:
    """Read X and y (or one-hot Y), check the labels and name the classes."""
    x, y, x_where, y_where = _read_arrays(cfg)
    if len(x) != len(y):
        raise DataError(f"X has {len(x)} rows but the labels have {len(y)}", where=str(cfg.path))
    x, kind = _images_nchw(x, x_where)
    if x.dtype.kind not in "iufb":
        raise DataError(f"inputs of type {x.dtype} are not numbers", where=x_where)
    labels = labels_from_array(np.asarray(y), y_where)
    labels, classes = resolve_classes(
        labels, label_map=cfg.label_map, class_names=cfg.class_names, where=y_where
    )
    x = np.asarray(x) if x.dtype == np.uint8 else np.asarray(x, dtype=np.float32)
    if kind == "image":
        x = conform_images(x, tuple(cfg.size) if cfg.size else None, cfg.channels)
    return RawData(
        x=np.ascontiguousarray(x), y=labels, classes=classes, kind=kind, named_classes=bool(cfg.class_names)
    )
