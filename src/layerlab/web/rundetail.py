"""What the run page shows beyond the run row: layer table, config text, heat-map cells, lineage."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from layerlab.apps.runs.models import Run
from layerlab.core import runlayout
from layerlab.web.rerun import lower_lr


def run_layer_table(run: Run) -> dict | None:
    """The engine's shape/parameter table written into the run directory (``network.json``), if any."""
    path = Path(run.run_dir or "") / runlayout.NETWORK
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
    return runlayout.has_checkpoints(run.run_dir)


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


def duration(run: Run, now=None) -> str:
    """Run time as ``1 min 5 s`` (finished), ``running 2 min`` so far (running, up to now); blank before
    it starts."""
    if not run.started_at:
        return ""
    if run.status == Run.Status.RUNNING:
        seconds = max(0, int(((now or timezone.now()) - run.started_at).total_seconds()))
        minutes, hours = seconds // 60, seconds // 3600
        if hours:
            return f"running {hours} h {minutes % 60} min"
        return f"running {minutes} min" if minutes else f"running {seconds} s"
    end = run.finished_at or run.heartbeat_at or run.started_at
    seconds = max(0, int((end - run.started_at).total_seconds()))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


# The series every run the lab or ``layerlab train`` trains writes each epoch (the runner's metrics row):
# their charts are laid out before the first epoch, so a live page never has to be drawn again.
ENGINE_METRICS = ["train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr", "seconds"]
WORD = re.compile(r"[^a-z0-9]+")
ACCURACY_WORDS = {"acc", "accuracy", "top1", "top5"}
TIME_NAMES = {"seconds", "epoch_time", "epoch_seconds", "epoch_time_s", "time", "duration", "sec"}


def metric_group(name: str) -> tuple[str, str, str]:
    """The chart a series belongs on: ``(key, title, y axis)``; loss-like and accuracy-like series share
    one chart each, the learning rate and the epoch time get one each, any other name its own."""
    low = name.lower()
    words = set(WORD.split(low))  # "val/top1_acc" -> {"val", "top1", "acc"}
    if "loss" in low:
        return "loss", "Loss", "loss"
    if words & ACCURACY_WORDS:
        return "acc", "Accuracy", "accuracy"
    if "lr" in words or "learning_rate" in low or "learningrate" in low:
        return "lr", "Learning rate", "learning rate"
    if re.split(r"[/.:]", low)[-1] in TIME_NAMES:  # "seconds", "epoch_time", "train/epoch_time"
        return "seconds", "Epoch time", "seconds"
    return f"m-{name}", name, name


def metric_charts(run: Run, names: list[str]) -> list[dict]:
    """One chart per group of the run's series (``metric_group``), loss and accuracy first, then the
    other names, then the learning rate and the epoch time; ``id`` is the canvas's element id.

    A run of the lab or of ``layerlab train`` starts with the engine's series; a logged run
    (origin client) with the names it logged so far, by step rather than by epoch.
    """
    if not names and run.origin != Run.Origin.CLIENT:
        names = ENGINE_METRICS
    groups: dict[str, dict] = {}
    for name in names:
        key, title, y = metric_group(name)
        group = groups.setdefault(key, {"key": key, "title": title, "y": y, "names": []})
        group["names"].append(name)
    order = {"loss": 0, "acc": 1, "lr": 3, "seconds": 4}
    charts = sorted(groups.values(), key=lambda g: (order.get(g["key"], 2), g["key"]))
    x_title = "step" if run.origin == Run.Origin.CLIENT else "epoch"
    for index, chart in enumerate(charts):
        key = chart.pop("key")
        chart["id"] = f"chart-{key}" if key in order else f"chart-m{index}"
        chart["x"] = x_title
        # The validation accuracy is filled to the train accuracy: the shaded band is the overfitting gap.
        chart["gap"] = {"train_accuracy", "val_accuracy"} <= set(chart["names"])
    return charts


def diverged(run: Run) -> dict | None:
    """A run the engine stopped because it diverged, said for the dashboard: the engine's message without
    its command-line hint (``--set``) or server paths, and the new-run form prefilled with a tenth of the
    learning rate (``rerun.initial_from_run``)."""
    error = run.error or ""
    if run.status != Run.Status.FAILED or not error.startswith("diverged at epoch"):
        return None
    was = ((run.config or {}).get("train") or {}).get("lr")
    lr = lower_lr(was)
    rerun_url = f"{reverse('web:run-new')}?{urlencode({'from': run.id, 'lr': lr})}" if lr else ""
    return {
        "message": error.split("; ", 1)[0],
        "checkpoint": "last good checkpoint is kept" in error,
        "lr": f"{lr:g}" if lr else "",
        "was": f"{was:g}" if lr else "",
        "rerun_url": rerun_url,
    }
