"""What every source returns (``RawData``) and the label checks the importers share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from layerlab.core.errors import DataError


def natural_key(text: str) -> tuple:
    """Sort key that orders ``IMG_99`` before ``IMG_100`` (numbers compare as numbers)."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", text)
    )


@dataclass
class RawData:
    """Decoded but unnormalized examples of one source, before limit and split.

    ``x`` is uint8 ``(N, C, H, W)`` for decoded images (scaled by 1/255 later), float32 otherwise:
    ``(N, F)`` vectors or ``(N, T, F)`` sequences.
    ``paths`` are relative to the source's path (None for generators and arrays); ``test_mask``
    is set by sources whose test set is fixed (not-so-clevr's task split).
    """

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    kind: Literal["image", "vector", "sequence", "video"]
    paths: list[str] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    named_classes: bool = False  # class names come from the data (folders, class_names), not 0..K-1
    test_mask: np.ndarray | None = None
    # the cache's x.npy read batch by batch (``layerlab.data.store.RowReader``), when x is that file
    reader: Any = None

    def take(self, index: np.ndarray) -> RawData:
        """The examples at ``index`` (classes and skipped files are kept)."""
        return RawData(
            x=self.x[index],
            y=self.y[index],
            classes=self.classes,
            kind=self.kind,
            paths=[self.paths[i] for i in index] if self.paths is not None else None,
            skipped=self.skipped,
            named_classes=self.named_classes,
            test_mask=self.test_mask[index] if self.test_mask is not None else None,
        )


def _as_integer_labels(values: np.ndarray, where: str) -> np.ndarray:
    """Integer labels from an int or integral float array, or a DataError naming the row."""
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "b":
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"the label in row {row} is not a whole number", where=where)
        return values.astype(np.int64)
    raise DataError(
        f"labels of type {values.dtype} are not numbers", hint="store integer labels", where=where
    )


def labels_from_array(y: np.ndarray, where: str) -> np.ndarray:
    """Class indices from labels ``(N,)`` or one-hot rows ``(N, K)``.

    Args:
        y: the stored labels.
        where: the file (and array name) for messages.
    """
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 1:
        return _as_integer_labels(y, where)
    if y.ndim == 2:
        bad_value = ~np.isin(y, (0, 1))
        bad_rows = bad_value.any(axis=1) | (y.sum(axis=1) != 1)
        if bad_rows.any():
            row = int(np.argmax(bad_rows))
            raise DataError(
                f"row {row} is not one-hot (exactly one 1, the rest 0)",
                hint="store labels as integers (y) or one-hot rows (Y)",
                where=where,
            )
        return np.argmax(y, axis=1).astype(np.int64)
    raise DataError(f"labels have shape {tuple(y.shape)}; expected (N,) or one-hot (N, K)", where=where)


def resolve_classes(
    labels: np.ndarray,
    *,
    label_map: dict | None,
    class_names: list[str] | None,
    where: str,
    column: str = "label",
    row_offset: int = 0,
) -> tuple[np.ndarray, list[str]]:
    """Apply ``label_map``, check labels are in range and name the classes.

    Args:
        labels: integer labels as stored.
        label_map: stored label -> class index (keys compared as text), or None.
        class_names: names of the classes, or None for ``0..K-1``.
        where: the file, for messages.
        column: the label column's name, for messages.
        row_offset: added to row numbers in messages (a CSV header and 1-based lines).
    """
    if label_map:
        mapping = {str(k): int(v) for k, v in label_map.items()}
        mapped = np.empty_like(labels)
        for value in np.unique(labels):
            if str(int(value)) not in mapping:
                row = int(np.argmax(labels == value)) + row_offset
                raise DataError(
                    f"row {row}, column {column}: the label is not in label_map",
                    hint=f"add it to data.label_map (known: {', '.join(sorted(mapping, key=natural_key))})",
                    where=where,
                )
            mapped[labels == value] = mapping[str(int(value))]
        labels = mapped
    if len(labels) == 0:
        raise DataError("there are no examples", where=where)
    count = len(class_names) if class_names else int(labels.max()) + 1
    bad = (labels < 0) | (labels >= count)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"row {row + row_offset}, column {column}: the label is out of range 0..{count - 1}",
            hint="fix the label, or list every class in data.class_names (or map labels with data.label_map)",
            where=where,
        )
    classes = list(class_names) if class_names else [str(i) for i in range(count)]
    return labels.astype(np.int64), classes


def check_finite(x: np.ndarray, where: str, chunk: int = 4096) -> None:
    """A DataError counting the NaN / infinite inputs and naming the first example holding one.

    Read in chunks of examples, so a memory-mapped array is never copied whole.
    """
    if x.dtype.kind != "f":
        return
    count, first = 0, None
    for start in range(0, len(x), chunk):
        bad = ~np.isfinite(np.asarray(x[start : start + chunk]))
        if bad.any():
            count += int(bad.sum())
            if first is None:
                first = start + int(np.argmax(bad.reshape(len(bad), -1).any(axis=1)))
    if count:
        raise DataError(
            f"the inputs hold {count} NaN or infinite value(s), the first in example {first}",
            hint="fill or drop the missing values before saving the arrays",
            where=where,
        )
