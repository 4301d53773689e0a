"""Clip-counting runs in the lab: the worker's report callback and the run page's report (a selector).

A run that classifies clips with a ``timedistributed`` layer writes ``frames.json`` and ``frames.png``
when it ends (``layerlab.inference.frames_report``); the run page shows the network's test accuracy
beside the peak-count baseline's (trained and untrained), the layer and channel the baseline chose on
the train split, and the chosen unit's trace over a few test clips with its peaks marked.
"""

from __future__ import annotations

import base64
import json

from layerlab.apps.runs.files import run_file_local
from layerlab.apps.runs.models import Run
from layerlab.core import runlayout
from layerlab.core.errors import LayerlabError

MAX_TRACES_BYTES = 2 * 1024 * 1024  # a trace plot larger than this is not inlined into the page


TIMEDISTRIBUTED = "timedistributed"


def run_is_frames(run: Run) -> bool:
    """Whether the run's config classifies clips with a top-level timedistributed layer: the rule of
    ``inference.frames_report.asks_for_frames``, read here without importing torch into the page."""
    config = run.config if isinstance(run.config, dict) else {}
    train, model = config.get("train") or {}, config.get("model") or {}
    task = (train.get("task") if isinstance(train, dict) else None) or "classification"
    layers = model.get("layers") if isinstance(model, dict) else None
    return task == "classification" and any(
        isinstance(layer, dict) and layer.get("kind") == TIMEDISTRIBUTED for layer in layers or ()
    )


def run_frames_callbacks(run: Run) -> list:
    """The runs app's callback factory: the frames report for a clip-counting run."""
    if not run_is_frames(run):
        return []
    from layerlab.inference.frames_report import FramesReport

    return [FramesReport()]


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _percent(value) -> str:
    """``0.925`` -> ``92.5%``; a missing figure -> an en dash (as the run page's other accuracies)."""
    number = _number(value)
    return "\u2013" if number is None else f"{100 * number:.1f}%"


def _baseline(entry) -> dict | None:
    """What the page shows of one baseline: its test accuracy and what it chose on train."""
    if not isinstance(entry, dict):
        return None
    return {
        "test_accuracy": _percent(entry.get("test_accuracy")),
        "train_accuracy": _percent(entry.get("train_accuracy")),
        "layer": str(entry.get("layer", "")),
        "channel": entry.get("channel") if isinstance(entry.get("channel"), int) else None,
        "mode": "turns" if entry.get("turns") else "peaks",
        "prominence": _number(entry.get("prominence")),
    }


def _traces_url(run: Run) -> str | None:
    try:
        image = run_file_local(run=run, relative=runlayout.FRAMES_TRACES)
        if image.stat().st_size <= MAX_TRACES_BYTES:
            return "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()
    except (LayerlabError, OSError):
        pass  # the figures without the picture
    return None


def run_frames(run: Run) -> dict | None:
    """The report's figures and the trace plot as a data URL, or None when the run is no clip-counting
    run or has no report yet (``{"network", "baseline", "untrained", "chance", "clips", "traces"}``)."""
    if not run_is_frames(run):
        return None
    try:  # the working copy, else the storage's (a run trained on another machine)
        path = run_file_local(run=run, relative=runlayout.FRAMES_REPORT)
        report = json.loads(path.read_text(encoding="utf-8"))
    except (LayerlabError, OSError, ValueError):
        return None
    if not isinstance(report, dict) or _baseline(report.get("baseline")) is None:
        return None
    clips = report.get("clips") if isinstance(report.get("clips"), dict) else {}
    return {
        "network": _percent(report.get("network_test_accuracy")),
        "baseline": _baseline(report.get("baseline")),
        "untrained": _baseline(report.get("untrained_baseline")),
        "chance": _percent(report.get("chance")),
        "clips": {split: clips[split] for split in ("train", "test") if isinstance(clips.get(split), dict)},
        "traces": _traces_url(run),
    }
