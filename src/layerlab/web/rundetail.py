"""What the run page shows beyond the run row: layer table, config text, heat-map cells, lineage."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from layerlab.apps.runs.models import Run


def run_layer_table(run: Run) -> dict | None:
    """The engine's shape/parameter table written into the run directory (``network.json``), if any."""
    path = Path(run.run_dir or "") / "network.json"
    if not run.run_dir or not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8")).get("summary") or {}
    except (OSError, ValueError):
        return None
    rows = [
        {
            **row,
            "indent": "\u2003" * int(row.get("depth") or 0),
            "output": "\u00d7".join(map(str, row["output_shape"])),
        }
        for row in summary.get("rows", [])
    ]
    return {
        "rows": rows,
        "total_params": summary.get("total_params"),
        "warnings": summary.get("warnings", []),
    }


ORIGIN_TEXT = {
    Run.Origin.SERVER: "trained by the lab",
    Run.Origin.CLI: "trained by layerlab train",
    Run.Origin.CLIENT: "logged through the API",
}


def origin_text(run: Run) -> str:
    """Where the run was trained, in words (the table and the run page say it)."""
    return ORIGIN_TEXT.get(run.origin, run.origin)


def has_weights(run: Run) -> bool:
    """Whether the run has a checkpoint: recorded (kept in the lab's storage), or in its run directory
    (``best.ckpt`` counts even when no epoch row was recorded)."""
    if not run.run_dir:
        return False
    if run.origin == Run.Origin.SERVER and run.checkpoints.exists():
        return True
    folder = Path(run.run_dir) / "checkpoints"
    return folder.is_dir() and any(folder.glob("*.ckpt"))


def config_text(config: dict) -> str:
    """The resolved config as YAML, the format of the command line's experiment files."""
    return yaml.safe_dump(config or {}, sort_keys=False, default_flow_style=None, width=100)


def confusion_cells(summary: dict) -> dict | None:
    """The confusion matrix as rows of cells with a 0-1 intensity (the heat map's shade), or None."""
    matrix = summary.get("confusion_matrix")
    classes = summary.get("classes") or []
    if not matrix:
        return None
    rows = []
    for index, counts in enumerate(matrix):
        total = sum(counts) or 1
        cells = [
            {"count": n, "share": n / total, "diagonal": col == index, "alpha": round(n / total, 3)}
            for col, n in enumerate(counts)
        ]
        rows.append({"label": classes[index] if index < len(classes) else str(index), "cells": cells})
    labels = [classes[i] if i < len(classes) else str(i) for i in range(len(matrix))]
    return {"labels": labels, "rows": rows}


def percent(value) -> str:
    """``0.912`` -> ``91.2%``; missing values -> an en dash."""
    return f"{100 * value:.1f}%" if isinstance(value, int | float) else "\u2013"


def duration(run: Run) -> str:
    """Run time as ``1 min 5 s`` (finished) or so far (running); blank before it starts."""
    if not run.started_at:
        return ""
    end = run.finished_at or run.heartbeat_at or run.started_at
    seconds = max(0, int((end - run.started_at).total_seconds()))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
