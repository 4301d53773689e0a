"""The ``npz`` and ``npy`` importers: arrays X (inputs) and y (labels) or one-hot Y.

``npz``: one ``.npz`` file holding ``X`` (or ``x``) and ``y`` (or one-hot ``Y``).
``npy``: a folder holding ``X.npy`` and ``Y.npy`` (or ``y.npy``), or the path of one of the two.
Inputs ``(N, F)`` are vectors; ``(N, H, W)``, ``(N, H, W, C)`` and ``(N, C, H, W)`` are images, or
what ``data.layout`` says (``layerlab.data.layout``: ``(N, T, F)`` sequences, flat vectors).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from layerlab.core.errors import DataError
from layerlab.data.config import DataConfig
from layerlab.data.layout import arrange
from layerlab.data.limits import DecodeLimits, array_bytes_check
from layerlab.data.sources.base import RawData, check_finite, labels_from_array, resolve_classes

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
        if not zipfile.is_zipfile(path):  # numpy would try it as a pickle and advise allow_pickle
            raise DataError(
                f"'{path.name}' is not an npz archive (np.savez writes a zip of .npy arrays)",
                hint="save with np.savez(path, X=inputs, y=labels), or use source csv for text",
                where="data.path",
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

    files = [find(X_NAMES), find(Y_NAMES)]
    for file in files:
        with open(file, "rb") as handle:
            if handle.read(6) != b"\x93NUMPY":
                raise DataError(f"'{file.name}' is not an .npy file (np.save writes them)", where="data.path")
    return files


def _read_arrays(
    cfg: DataConfig, limits: DecodeLimits | None = None
) -> tuple[np.ndarray, np.ndarray, str, str]:
    files = array_files(cfg)
    try:
        if cfg.source == "npz":
            with np.load(files[0], allow_pickle=False) as archive:
                keys = list(archive.keys())
                x_key = next((k for k in X_NAMES if k in keys), None)
                y_key = next((k for k in Y_NAMES if k in keys), None)
                if x_key is None or y_key is None:
                    raise DataError(
                        f"needs arrays X and y (or one-hot Y); it holds {len(keys)} other arrays",
                        hint="save with np.savez(path, X=inputs, y=labels)",
                        where=str(files[0]),
                    )
                for key in (x_key, y_key):  # the headers' shape and dtype, before anything is inflated
                    stored = f"{key}.npy" if f"{key}.npy" in archive.zip.namelist() else key
                    with archive.zip.open(stored) as member:
                        array_bytes_check(member, f"{files[0].name}:{key}", limits)
                return archive[x_key], archive[y_key], f"{files[0]}:{x_key}", f"{files[0]}:{y_key}"
        for file in files:
            with open(file, "rb") as handle:
                array_bytes_check(handle, file.name, limits)
        # mmap: reading a large X costs nothing until it is used
        return np.load(files[0], mmap_mode="r"), np.load(files[1]), str(files[0]), str(files[1])
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        # numpy's message may quote the file's header bytes: only the kind of failure is told.
        raise DataError(
            f"cannot read arrays: not a valid .npz/.npy file ({type(exc).__name__})",
            hint="save with np.savez(path, X=inputs, y=labels)",
            where=str(cfg.path),
        ) from None


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


def holds_values(y: np.ndarray) -> bool:
    """Whether stored ``y`` are values to regress: floats, some not whole (labels and one-hot rows are)."""
    return y.dtype.kind == "f" and bool(np.any(np.isfinite(y) & (y != np.round(y))))


def load_arrays(cfg: DataConfig, *, limits: DecodeLimits | None = None) -> RawData:
    """Read X and y (or one-hot Y), check the labels and name the classes.

    Args:
        limits: the byte cap per array, checked from the headers before loading (default:
            ``layerlab.data.limits.default_limits()``).
    """
    x, y, x_where, y_where = _read_arrays(cfg, limits)
    if len(x) != len(y):
        raise DataError(f"X has {len(x)} rows but the labels have {len(y)}", where=str(cfg.path))
    if x.dtype.kind not in "iufb":
        raise DataError(f"inputs of type {x.dtype} are not numbers", where=x_where)
    check_finite(x, x_where)
    x, kind = arrange(x, cfg.layout, cfg.steps, x_where)
    if holds_values(np.asarray(y)):  # regression: float targets (N,) or (N, K), named y0, y1 ...
        values = np.asarray(y, dtype=np.float32).reshape(len(y), -1)
        check_finite(values, y_where)
        x = np.asarray(x) if x.dtype == np.uint8 else np.asarray(x, dtype=np.float32)
        if kind == "image":
            x = conform_images(x, tuple(cfg.size) if cfg.size else None, cfg.channels)
        names = cfg.class_names or [f"y{i}" for i in range(values.shape[1])]
        return RawData(
            x=np.ascontiguousarray(x), y=values, classes=list(names), kind=kind, named_classes=True
        )
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
