"""A split of decoded uint8 images read batch by batch: converted and normalized when indexed.

``SplitView`` stands where a float32 tensor of the whole split used to: ``len(view)``,
``view.shape``, ``view.device`` and ``view[index]`` (a tensor of indices, an array, a slice or an
int) behave like the tensor's, and ``view[index]`` returns the normalized float32 batch, bitwise
what indexing the old tensor gave (the same element-wise steps, ``Preprocessing.apply``). Nothing
is drawn from any RNG here, so augmentation and exact resume are untouched. The rows come from a
``RowReader`` (the cache's ``x.npy``, read with ``preadv``) or from an in-memory uint8 array.
"""

from __future__ import annotations

import numpy as np
import torch

from layerlab.data.preprocess import Preprocessing
from layerlab.data.store import RowReader

MATERIALIZE_ROWS = 1024  # rows per read when a whole split is turned into one tensor


class SplitView:
    """The examples at ``positions`` of ``source``, normalized with ``preprocessing`` when indexed.

    Args:
        source: a ``RowReader`` or an in-memory ``(N, C, H, W)`` uint8 array.
        positions: the split's rows in ``source``, in the split's order.
        preprocessing: the run's preprocessing (statistics of the training split).
        device: where indexed batches are put.
    """

    def __init__(
        self,
        source: RowReader | np.ndarray,
        positions: np.ndarray,
        preprocessing: Preprocessing,
        device: torch.device | str = "cpu",
    ):
        self.source = source
        self.positions = np.asarray(positions, dtype=np.int64)
        self.preprocessing = preprocessing
        self.device = torch.device(device)
        self.dtype = torch.float32

    def __len__(self) -> int:
        return len(self.positions)

    def __repr__(self) -> str:
        return f"SplitView({len(self)} examples of {self.preprocessing.input_shape}, device={self.device})"

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self.preprocessing.input_shape))

    @property
    def ndim(self) -> int:
        return 1 + len(self.preprocessing.input_shape)

    def dim(self) -> int:
        return self.ndim

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(np.prod(self.shape))

    def to(self, device: torch.device | str, *args, **kwargs) -> SplitView:
        """The same view, its batches put on ``device`` (nothing is copied now)."""
        return SplitView(self.source, self.positions, self.preprocessing, device)

    def float(self) -> SplitView:
        return self

    def cpu(self) -> SplitView:
        return self.to("cpu")

    def rows(self, index) -> np.ndarray:
        """The uint8 rows (unnormalized) of the split's examples at ``index``."""
        if isinstance(index, torch.Tensor):
            index = index.detach().cpu().numpy()
        wanted = self.positions[index]
        if isinstance(self.source, RowReader):
            return self.source.rows(np.atleast_1d(wanted))
        return np.asarray(self.source[np.atleast_1d(wanted)])

    def __getitem__(self, index) -> torch.Tensor:
        single = isinstance(index, int | np.integer) or (isinstance(index, torch.Tensor) and index.dim() == 0)
        batch = self.preprocessing.apply(self.rows(index))
        if self.device.type != "cpu":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        return batch[0] if single else batch

    def materialize(self) -> torch.Tensor:
        """The whole split as one normalized float32 tensor (4 bytes per pixel: small splits only)."""
        parts = [self[i : i + MATERIALIZE_ROWS] for i in range(0, len(self), MATERIALIZE_ROWS)]
        if not parts:
            return torch.empty(tuple(self.shape), dtype=torch.float32, device=self.device)
        return torch.cat(parts)


def as_tensor(x) -> torch.Tensor:
    """A tensor of a split: a ``SplitView`` is materialized, tensors and arrays are passed as tensors."""
    if isinstance(x, SplitView):
        return x.materialize()
    return torch.as_tensor(x)
