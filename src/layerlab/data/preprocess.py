"""The preprocessing a run stores: input kind and shape, classes and normalization statistics.

``Preprocessing.apply`` turns decoded arrays into normalized float32 tensors: uint8 images are
first scaled by 1/255, then every channel (or vector feature) becomes ``(x - mean) / std``
with statistics fitted on the training split only. ``load_images`` decodes image files the
same way, for prediction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from layerlab.core.errors import DataError


def to_float_array(array: np.ndarray | torch.Tensor) -> np.ndarray:
    """A new float32 array (never a view of ``array``); uint8 (decoded images) is scaled to [0, 1].

    NumPy rather than torch: these one-pass element-wise ops are memory bound, and torch's
    intra-op threads only add contention on a small shared machine.
    """
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)  # read-only memory maps are copied here, never written
    out = array.astype(np.float32)  # always a copy
    if array.dtype == np.uint8:
        np.divide(out, np.float32(255.0), out=out)
    return out


def _channel_statistics(x: np.ndarray, normalize: str, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per channel (or feature) mean and std, or minimum and range, in float64 over chunks.

    Chunks keep memory flat: a float64 copy of a large uint8 image set would be 8x its size.
    """
    width = x.shape[1]
    axes = (0, *range(2, x.ndim))  # every axis but the channel / feature one
    total = np.zeros(width)
    squares = np.zeros(width)
    low = np.full(width, np.inf)
    high = np.full(width, -np.inf)
    count = 0
    for start in range(0, len(x), chunk):
        part = to_float_array(x[start : start + chunk]).astype(np.float64)
        total += part.sum(axis=axes)
        squares += np.square(part).sum(axis=axes)
        low = np.minimum(low, part.min(axis=axes))
        high = np.maximum(high, part.max(axis=axes))
        count += part.size // width
    if normalize == "unit":
        return low, high - low
    mean = total / count
    return mean, np.sqrt(np.clip(squares / count - mean * mean, 0.0, None))


STATISTICS_CHUNK_BYTES = 4 * 1024 * 1024  # uint8 rows read at a time by the streaming statistics


def _uint8_statistics(
    read: Callable[[np.ndarray], np.ndarray], positions: np.ndarray, like: np.ndarray, normalize: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per channel mean and std (or minimum and range) of uint8 images, one streaming pass.

    A histogram of the 256 values per channel, chunk by chunk (``STATISTICS_CHUNK_BYTES``):
    memory stays flat whatever the data's size and the counts are exact, so the result does not
    depend on the chunking. The moments are taken of the float32 values ``to_float_array`` makes
    (``v / 255`` in float32), summed in float64: ``_channel_statistics``'s figures up to float64
    rounding.

    Args:
        read: ``positions -> uint8 rows``.
        positions: the rows to count.
        like: an array with the rows' shape (``(N, C, H, W)``).
    """
    width = like.shape[1]
    row_bytes = max(1, int(np.prod(like.shape[1:])))
    step = max(1, STATISTICS_CHUNK_BYTES // row_bytes)
    counts = np.zeros((width, 256), dtype=np.int64)
    for start in range(0, len(positions), step):
        part = np.asarray(read(positions[start : start + step]))
        for channel in range(width):
            counts[channel] += np.bincount(part[:, channel].ravel(), minlength=256)
    values = (np.arange(256, dtype=np.float32) / np.float32(255.0)).astype(np.float64)
    if normalize == "unit":
        present = counts > 0
        low = np.array([values[np.flatnonzero(row)[0]] for row in present])
        high = np.array([values[np.flatnonzero(row)[-1]] for row in present])
        return low, high - low
    total = counts.sum(axis=1)
    mean = (counts @ values) / total
    squares = (counts @ (values * values)) / total
    return mean, np.sqrt(np.clip(squares - mean * mean, 0.0, None))


@dataclass
class Preprocessing:
    """Everything needed to ready new data the way a run's training data was readied.

    ``mean``/``std`` hold one value per channel (images) or per feature (vectors):
    ``standard`` stores the mean and standard deviation, ``unit`` the minimum and range
    (so ``(x - mean) / std`` lies in [0, 1] on the training data), ``none`` zeros and ones.
    """

    kind: Literal["image", "vector", "sequence", "video"]
    size: list[int] | None  # [height, width] of images (and of video frames)
    channels: int | None  # image channels
    normalize: Literal["standard", "unit", "none"]
    mean: list[float]
    std: list[float]
    classes: list[str]
    features: int | None = None  # length of input vectors, features per step of sequences
    extra: dict = field(default_factory=dict)  # room for later additions without breaking from_dict
    steps: int | None = None  # time steps T of sequences

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` for images, ``(F,)`` for vectors, ``(T, F)`` for sequences, ``(T, C, H, W)`` for video."""
        if self.kind == "video":
            return (int(self.steps or 1), int(self.channels or 1), int(self.size[0]), int(self.size[1]))
        if self.kind == "image":
            return (int(self.channels or 1), int(self.size[0]), int(self.size[1]))
        if self.kind == "sequence":
            return (int(self.steps or 1), int(self.features or len(self.mean)))
        return (int(self.features or len(self.mean)),)

    @classmethod
    def fit(
        cls,
        train_x: np.ndarray,
        *,
        kind: str,
        normalize: str,
        classes: Sequence[str],
        index: np.ndarray | None = None,
        read: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> Preprocessing:
        """Statistics from the training inputs only.

        Args:
            train_x: decoded training inputs, ``(N, C, H, W)`` or ``(N, F)`` (with ``index``: the
                whole decoded array, e.g. a memory map).
            kind: "image" or "vector".
            normalize: "standard", "unit" or "none".
            classes: class names, index order.
            index: the training rows of ``train_x`` (default: every row).
            read: ``positions -> rows`` (a ``RowReader``'s ``rows``; default ``train_x[positions]``).
        """
        sequence = kind == "sequence"
        images = kind == "image" and train_x.dtype == np.uint8
        if index is not None and not images:
            train_x, index = train_x[index], None  # vectors and float images are small: in memory
        count = len(train_x) if index is None else len(index)
        # a sequence (N, T, F) is normalized per feature, the last axis: statistics of (N, F, T);
        # video (N, T, C, H, W) per channel, over every frame: statistics of (N, C, T, H, W)
        video = kind == "video"
        by_feature = train_x.transpose(0, 2, 1) if sequence else train_x
        if video:
            by_feature = train_x.transpose(0, 2, 1, 3, 4)
        width = by_feature.shape[1]
        mean, std = [0.0] * width, [1.0] * width
        if normalize != "none" and count:
            if images:
                positions = np.arange(len(train_x)) if index is None else np.asarray(index)
                mean_a, std_a = _uint8_statistics(
                    read or (lambda p: train_x[p]), positions, train_x, normalize
                )
            else:
                row_bytes = 8 * max(1, int(np.prod(by_feature.shape[1:])))  # one example in float64
                chunk = max(1, min(1024, (64 << 20) // row_bytes)) if video else 1024  # clips: 64 MiB
                mean_a, std_a = _channel_statistics(by_feature, normalize, chunk=chunk)
            std_a = np.where(std_a > 1e-12, std_a, 1.0)  # a constant channel stays put
            mean, std = mean_a.tolist(), std_a.tolist()
        image = kind == "image"
        return cls(
            kind=kind,  # type: ignore[arg-type]
            size=[int(train_x.shape[-2]), int(train_x.shape[-1])] if image or video else None,
            channels=int(width) if image or video else None,
            normalize=normalize,  # type: ignore[arg-type]
            mean=mean,
            std=std,
            classes=list(classes),
            features=None if image or video else int(width),
            steps=int(train_x.shape[1]) if sequence or video else None,
        )

    def to_dict(self) -> dict:
        """A JSON-ready mapping (stored in checkpoints and run directories)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        """The inverse of ``to_dict``; unknown keys (from newer versions) are kept in ``extra``."""
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs.setdefault("extra", {}).update({k: v for k, v in data.items() if k not in known})
        return cls(**kwargs)

    def apply(self, array: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Decoded, unnormalized inputs (a batch) -> normalized float32 tensor.

        Args:
            array: ``(N, C, H, W)`` images (uint8 or floats in [0, 1]) or ``(N, F)`` vectors.
        """
        x = to_float_array(array)
        expected = self.input_shape
        if tuple(x.shape[1:]) != expected:
            raise DataError(
                f"inputs of shape {tuple(x.shape[1:])} do not fit this run, which takes {expected}",
                hint="decode images with the run's size and channels (Preprocessing.load_images)",
            )
        shapes = {"image": (1, -1, 1, 1), "sequence": (1, 1, -1), "video": (1, 1, -1, 1, 1)}
        shape = shapes.get(self.kind, (1, -1))
        x -= np.asarray(self.mean, dtype=np.float32).reshape(shape)
        x /= np.asarray(self.std, dtype=np.float32).reshape(shape)
        return torch.from_numpy(np.ascontiguousarray(x))

    def load_images(self, paths: Sequence[str | Path], *, names: Sequence[str] | None = None) -> torch.Tensor:
        """Decode image files with the run's size and channels and normalize them (for predict).

        Args:
            names: how errors name the files (uploads' names; default: the paths).
        """
        if self.kind != "image":
            takes = "clips of frames (T, C, H, W)" if self.kind == "video" else "vectors"
            raise DataError(
                f"this run takes {takes}, not images", hint="give inputs as the run's data source does"
            )
        from layerlab.data.decode import decode_files_strict

        return self.apply(decode_files_strict(list(paths), self.size, int(self.channels or 1), names=names))
