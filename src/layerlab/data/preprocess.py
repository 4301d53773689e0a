"""The preprocessing a run stores: input kind and shape, classes and normalization statistics.

``Preprocessing.apply`` turns decoded arrays into normalized float32 tensors: uint8 images are
first scaled by 1/255, then every channel (or vector feature) becomes ``(x - mean) / std``
with statistics fitted on the training split only. ``load_images`` decodes image files the
same way, for prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
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


@dataclass
class Preprocessing:
    """Everything needed to ready new data the way a run's training data was readied.

    ``mean``/``std`` hold one value per channel (images) or per feature (vectors):
    ``standard`` stores the mean and standard deviation, ``unit`` the minimum and range
    (so ``(x - mean) / std`` lies in [0, 1] on the training data), ``none`` zeros and ones.
    """

    kind: Literal["image", "vector"]
    size: list[int] | None  # [height, width] of images
    channels: int | None  # image channels
    normalize: Literal["standard", "unit", "none"]
    mean: list[float]
    std: list[float]
    classes: list[str]
    features: int | None = None  # length of input vectors
    extra: dict = field(default_factory=dict)  # room for later additions without breaking from_dict

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` for images, ``(F,)`` for vectors."""
        if self.kind == "image":
            return (int(self.channels or 1), int(self.size[0]), int(self.size[1]))
        return (int(self.features or len(self.mean)),)

    @classmethod
    def fit(cls, train_x: np.ndarray, *, kind: str, normalize: str, classes: Sequence[str]) -> Preprocessing:
        """Statistics from the training inputs only.

        Args:
            train_x: decoded training inputs, ``(N, C, H, W)`` or ``(N, F)``.
            kind: "image" or "vector".
            normalize: "standard", "unit" or "none".
            classes: class names, index order.
        """
        width = train_x.shape[1]
        mean, std = [0.0] * width, [1.0] * width
        if normalize != "none" and len(train_x):
            mean_a, std_a = _channel_statistics(train_x, normalize)
            std_a = np.where(std_a > 1e-12, std_a, 1.0)  # a constant channel stays put
            mean, std = mean_a.tolist(), std_a.tolist()
        image = kind == "image"
        return cls(
            kind=kind,  # type: ignore[arg-type]
            size=[int(train_x.shape[2]), int(train_x.shape[3])] if image else None,
            channels=int(width) if image else None,
            normalize=normalize,  # type: ignore[arg-type]
            mean=mean,
            std=std,
            classes=list(classes),
            features=None if image else int(width),
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
        shape = (1, -1, 1, 1) if self.kind == "image" else (1, -1)
        x -= np.asarray(self.mean, dtype=np.float32).reshape(shape)
        x /= np.asarray(self.std, dtype=np.float32).reshape(shape)
        return torch.from_numpy(np.ascontiguousarray(x))

    def load_images(self, paths: Sequence[str | Path]) -> torch.Tensor:
        """Decode image files with the run's size and channels and normalize them (for predict)."""
        if self.kind != "image":
            raise DataError(
                "this run takes vectors, not images", hint="give inputs as the run's data source does"
            )
        from layerlab.data.decode import decode_files_strict

        return self.apply(decode_files_strict(list(paths), self.size, int(self.channels or 1)))
