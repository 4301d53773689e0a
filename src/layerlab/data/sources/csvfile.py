"""The ``csv`` importer: numeric feature columns plus one label column, header optional.

A header is recognised when a feature cell of the first row is not a number. The label
column is ``label_column`` (a header name or a 0-based index, negative counts from the end;
the last column by default). Labels are integers (0..K-1, or mapped by ``label_map``) or
class names, which are then sorted in natural order.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from layerlab.core.errors import DataError
from layerlab.data.config import DataConfig
from layerlab.data.layout import arrange
from layerlab.data.sources.base import RawData, check_finite, natural_key, resolve_classes


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_file(cfg: DataConfig) -> Path:
    """The CSV file of the source, checked to exist."""
    path = Path(cfg.path or "").expanduser()
    if not cfg.path or not path.is_file():
        raise DataError(f"CSV file '{cfg.path}' does not exist", hint="check data.path")
    return path


def _label_index(label_column: str | int | None, header: list[str] | None, width: int, where: str) -> int:
    if label_column is None:
        return width - 1
    if isinstance(label_column, str) and not label_column.lstrip("-").isdigit():
        if header is None or label_column not in header:
            known = (
                f"the header has {len(header)} columns; check the name, or give an index from 0"
                if header
                else "the file has no header; give an index"
            )
            raise DataError(f"no label column '{label_column}'", hint=known, where=where)
        return header.index(label_column)
    index = int(label_column)
    if not -width <= index < width:
        raise DataError(f"label column {index} is outside the {width} columns", where=where)
    return index % width


def _ignored_columns(names: list[str] | None, header: list[str] | None, where: str) -> set[int]:
    """The indices of ``data.ignore_columns`` (header names): columns that are not features."""
    if not names:
        return set()
    missing = [name for name in names if header is None or name not in header]
    if missing:
        raise DataError(f"no column '{missing[0]}' to ignore in the header", where=where)
    return {header.index(name) for name in names}


def load_csv(cfg: DataConfig) -> RawData:
    """Read a CSV file into float32 vectors and class indices."""
    path = csv_file(cfg)
    where = str(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error):  # named, never quoted: the bytes may be anything
        raise DataError("the file is not UTF-8 comma-separated text", where=where) from None
    if not rows:
        raise DataError("the CSV file is empty", where=where)
    width = len(rows[0])
    if width < 2:
        raise DataError("needs at least one feature column and a label column", where=where)
    first = [cell.strip() for cell in rows[0]]
    named_label = isinstance(cfg.label_column, str) and not cfg.label_column.lstrip("-").isdigit()
    if named_label:
        has_header = True
    else:
        provisional = _label_index(cfg.label_column, None, width, where)
        has_header = any(not _is_number(c) for i, c in enumerate(first) if i != provisional)
    header = first if has_header else None
    label_index = _label_index(cfg.label_column, header, width, where)
    body = rows[1:] if has_header else rows
    line0 = 2 if has_header else 1  # 1-based line number of body[0]
    if not body:
        raise DataError("the CSV file has a header but no rows", where=where)

    ignored = _ignored_columns(cfg.ignore_columns, header, where)
    feature_columns = [i for i in range(width) if i != label_index and i not in ignored]
    features = np.empty((len(body), len(feature_columns)), dtype=np.float32)
    raw_labels: list[str] = []
    for r, row in enumerate(body):
        if len(row) != width:
            raise DataError(f"row {r + line0} has {len(row)} columns, the first row has {width}", where=where)
        for k, c in enumerate(feature_columns):
            try:
                features[r, k] = float(row[c])
            except ValueError:
                raise DataError(  # the value itself is never repeated: the file may be anything
                    f"row {r + line0}, column {c}: the value is not a number",
                    hint="feature columns (counted from 0) must be numeric; set data.label_column if this is the label",
                    where=where,
                ) from None
        raw_labels.append(row[label_index].strip())

    column = str(label_index)  # by index: a header name is the file's content
    if all(_is_number(v) for v in raw_labels):
        values = np.array([float(v) for v in raw_labels])
        fractional = values != np.round(values)
        if fractional.any():
            r = int(np.argmax(fractional))
            raise DataError(f"row {r + line0}, column {column}: the label is not a whole number", where=where)
        labels, classes = resolve_classes(
            values.astype(np.int64),
            label_map=cfg.label_map,
            class_names=cfg.class_names,
            where=where,
            column=column,
            row_offset=line0,
        )
        named = bool(cfg.class_names)
    elif cfg.label_map:
        unknown = next((i for i, v in enumerate(raw_labels) if v not in cfg.label_map), None)
        if unknown is not None:
            raise DataError(
                f"row {unknown + line0}, column {column}: the label is not in label_map",
                where=where,
            )
        mapped = np.array([int(cfg.label_map[v]) for v in raw_labels], dtype=np.int64)
        labels, classes = resolve_classes(
            mapped, label_map=None, class_names=cfg.class_names, where=where, column=column, row_offset=line0
        )
        named = bool(cfg.class_names)
    else:
        classes = cfg.class_names or sorted(set(raw_labels), key=natural_key)
        index = {name: i for i, name in enumerate(classes)}
        unknown = next((i for i, v in enumerate(raw_labels) if v not in index), None)
        if unknown is not None:
            raise DataError(
                f"row {unknown + line0}, column {column}: the class is not in data.class_names",
                where=where,
            )
        labels = np.array([index[v] for v in raw_labels], dtype=np.int64)
        named = True
    check_finite(features, where)
    x, kind = arrange(features, cfg.layout, cfg.steps, where)
    return RawData(x=x, y=labels, classes=list(classes), kind=kind, named_classes=named)
