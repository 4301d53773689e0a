"""The test split's per-example predictions of a finished run: ``test_predictions.npz`` in its directory.

Written with the summary at the end of a run (the same weights as its confusion matrix), so a
confusion-matrix cell can be opened to show the test examples in it. Positions index the test split
as ``layerlab.data.prepare.held_out_examples`` rebuilds it from the run's config and seed.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from layerlab.core.errors import DataError
from layerlab.core.runlayout import TEST_PREDICTIONS


@dataclass(frozen=True)
class SplitPredictions:
    """``true[i]`` and ``predicted[i]`` of test example ``i`` (int32 arrays of the split's length)."""

    true: np.ndarray
    predicted: np.ndarray

    def cell(self, true: int, predicted: int) -> np.ndarray:
        """Positions in the test split of the examples of class ``true`` predicted as ``predicted``."""
        return np.flatnonzero((self.true == true) & (self.predicted == predicted))


def predictions_write(run_dir: str | Path, true, predicted) -> Path:
    """Write the file atomically (temporary file, fsync, rename); returns its path.

    Args:
        run_dir: the run directory.
        true, predicted: class indices of the test examples, in split order (tensors or arrays).
    """
    true = np.asarray(true.cpu() if hasattr(true, "cpu") else true, dtype=np.int32)
    predicted = np.asarray(predicted.cpu() if hasattr(predicted, "cpu") else predicted, dtype=np.int32)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, true=true, predicted=predicted)
    path = Path(run_dir) / TEST_PREDICTIONS
    temporary = path.with_suffix(".npz.tmp")
    with open(temporary, "wb") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def predictions_read(path: str | Path) -> SplitPredictions:
    """Read the file (no pickled objects); a DataError when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            true, predicted = data["true"].astype(np.int64), data["predicted"].astype(np.int64)
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{TEST_PREDICTIONS} cannot be read ({type(exc).__name__})") from None
    if true.shape != predicted.shape or true.ndim != 1:
        raise DataError(f"{TEST_PREDICTIONS} is malformed")
    return SplitPredictions(true=true, predicted=predicted)
