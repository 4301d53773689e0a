"""Reconstruction runs in the lab: the worker's report callback and the run page's report (a selector).

A reconstruction run (``train.task: reconstruction``) writes ``reconstruction.json`` and
``reconstruction.png`` when it ends (``layerlab.inference.reconstruction``); the run page shows the
test MSE per pixel beside PCA (and the noisy input, for denoising) and the input / reconstruction grid.
"""

from __future__ import annotations

import base64
import json

from layerlab.apps.runs.files import run_file_local
from layerlab.apps.runs.models import Run
from layerlab.core import runlayout
from layerlab.core.errors import LayerlabError

RECONSTRUCTION = "reconstruction"
MAX_GRID_BYTES = 2 * 1024 * 1024  # a grid larger than this is not inlined into the page


def run_is_reconstruction(run: Run) -> bool:
    """Whether the run's config asks for the reconstruction task."""
    train = (run.config or {}).get("train") or {}
    return isinstance(train, dict) and train.get("task") == RECONSTRUCTION


def run_reconstruction_callbacks(run: Run) -> list:
    """The runs app's callback factory: the reconstruction report for a reconstruction run."""
    if not run_is_reconstruction(run):
        return []
    from layerlab.inference.reconstruction import ReconstructionReport

    return [ReconstructionReport()]


def run_reconstruction(run: Run) -> dict | None:
    """The report's figures and the grid as a data URL (``{"report", "grid"}``), or None when the run
    is no reconstruction run or has no report yet."""
    if not run_is_reconstruction(run):
        return None
    try:  # the working copy, else the storage's (a run trained on another machine)
        path = run_file_local(run=run, relative=runlayout.RECONSTRUCTION_REPORT)
        report = json.loads(path.read_text(encoding="utf-8"))
    except (LayerlabError, OSError, ValueError):
        return None
    if not isinstance(report, dict):
        return None
    data_url = None
    try:
        grid = run_file_local(run=run, relative=runlayout.RECONSTRUCTION_GRID)
        if grid.stat().st_size <= MAX_GRID_BYTES:
            data_url = "data:image/png;base64," + base64.b64encode(grid.read_bytes()).decode()
    except (LayerlabError, OSError):
        pass  # the figures without the picture
    figures = {
        key: report.get(key)
        for key in ("test_mse", "pca_mse", "noisy_input_mse", "pca_noisy_mse", "code_size", "test_examples")
        if isinstance(report.get(key), int | float) and not isinstance(report.get(key), bool)
    }
    return {"report": figures, "denoising": bool(report.get("denoising")), "grid": data_url}
