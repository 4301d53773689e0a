"""The schema of a run's ``summary``: what ``finish`` may store, and what the pages may trust of old rows.

The engine writes these keys (``train.runner``); a client run (``origin: client``) sends its own
through ``POST /api/runs/{id}/finish/``. One schema checks both ends: ``summary_problems`` lists
what is wrong with a sent summary (the API answers 400 naming the key), ``summary_displayable``
keeps only the keys a page can render from a row stored before the check existed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

MAX_TEXT = 5000
MAX_CLASSES = 10_000
MAX_LIST = 1000


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def number(value) -> str | None:
    return None if value is None or _number(value) else "must be a finite number or null"


def share(value) -> str | None:
    if value is None:
        return None
    if not _number(value) or not 0 <= value <= 1:
        return "must be a number between 0 and 1 (a share, not a percentage) or null"
    return None


def count(value) -> str | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return None
    return "must be a whole number of at least 0 or null"


def text(value) -> str | None:
    if value is None or (isinstance(value, str) and len(value) <= MAX_TEXT):
        return None
    return f"must be text of at most {MAX_TEXT} characters or null"


def texts(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_LIST or any(text(v) or v is None for v in value):
        return f"must be a list of at most {MAX_LIST} texts"
    return None


def classes(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_CLASSES:
        return f"must be a list of at most {MAX_CLASSES} class names"
    if any(not isinstance(v, str) or len(v) > 200 for v in value):
        return "must hold class names as text of at most 200 characters"
    return None


def per_class(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > MAX_CLASSES:
        return "must be an object of class name -> accuracy between 0 and 1 (or null)"
    if any(len(str(k)) > 200 or share(v) for k, v in value.items()):
        return "must map each class name to an accuracy between 0 and 1 (or null)"
    return None


def matrix(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_LIST:
        return f"must be a square list of rows (at most {MAX_LIST}) of counts, or null"
    if any(not isinstance(row, list) or len(row) != len(value) for row in value):
        return f"must be square: {len(value)} rows of {len(value)} counts each"
    if any(count(n) or n is None for row in value for n in row):
        return "must hold whole numbers of at least 0"
    return None


def mapping(value) -> str | None:
    return None if value is None or isinstance(value, dict) else "must be an object or null"


# key -> check returning a reason, or None when the value fits
SCHEMA: dict[str, Callable[[object], str | None]] = {
    **dict.fromkeys(
        ["train_loss", "val_loss", "test_loss", "best_metric", "seconds", "train_seconds"], number
    ),
    **dict.fromkeys(["train_accuracy", "val_accuracy", "test_accuracy"], share),
    **dict.fromkeys(
        ["epochs", "epochs_planned", "best_epoch", "parameters", "trainable_parameters", "num_threads"],
        count,
    ),
    **dict.fromkeys(
        [
            "status",
            "verdict",
            "evaluated_weights",
            "monitor",
            "weights_sha256",
            "best_weights_sha256",
            "device",
            "run_dir",
            "confusion_matrix_note",
        ],
        text,
    ),  # fmt: skip
    "classes": classes,
    "per_class_accuracy": per_class,
    "confusion_matrix": matrix,
    "frozen": texts,
    "warnings": texts,
    "init_from": mapping,
    "data_report": mapping,
    "distributed": mapping,  # a torchrun group's world_size, backend, nnodes ... (null for one process)
}


def extra(value) -> str | None:
    """Keys the lab does not know: kept when they are a plain number, text, true/false or null."""
    if value is None or isinstance(value, bool) or _number(value) or not text(value):
        return None
    return "is not one of the summary's keys, so it must be a finite number, a text, true/false or null"


def summary_problems(summary: dict) -> dict[str, str]:
    """``{key: reason}`` for every value of ``summary`` that does not fit the schema (empty: it fits).

    Beyond each key's own type: ``confusion_matrix`` has one row per class of ``classes``, and
    ``per_class_accuracy`` names only classes of ``classes`` (when both are given).
    """
    if not isinstance(summary, dict):
        return {"summary": "must be an object"}
    problems = {}
    for key, value in summary.items():
        reason = SCHEMA.get(key, extra)(value)
        if reason:
            problems[key] = reason
    names = summary.get("classes")
    if "classes" in problems or not isinstance(names, list):
        return problems
    grid = summary.get("confusion_matrix")
    if "confusion_matrix" not in problems and grid is not None and len(grid) != len(names):
        problems["confusion_matrix"] = f"has {len(grid)} rows, but classes names {len(names)} classes"
    accuracies = summary.get("per_class_accuracy")
    if "per_class_accuracy" not in problems and isinstance(accuracies, dict):
        unknown = sorted(set(accuracies) - set(names))
        if unknown:
            problems["per_class_accuracy"] = f"names classes not in classes: {', '.join(unknown[:5])}"
    return problems


def summary_displayable(summary) -> dict:
    """The keys of a stored summary that fit the schema; the others are dropped (rows stored before it)."""
    if not isinstance(summary, dict):
        return {}
    problems = summary_problems(summary)
    return {key: value for key, value in summary.items() if key not in problems}
