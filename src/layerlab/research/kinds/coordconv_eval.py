"""Coordinate regression scored as Liu et al. 2018 score it: is the prediction the right pixel?

A regressor predicts ``(i, j) / 64``; its prediction counts as correct when both coordinates,
scaled back by the canvas side and rounded, are the target pixel. The MSE (in the normalized
units the network is trained in) and the mean Euclidean error in pixels are reported beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from layerlab.core.errors import ConfigError
from layerlab.data.sources.generators import CANVAS

BATCH = 256


def pixel_metrics(pred: np.ndarray, target: np.ndarray, prefix: str, side: int = CANVAS) -> dict:
    """``{prefix}_accuracy`` (right pixel on both axes), ``{prefix}_mse``, ``{prefix}_pixel_error``.

    Args:
        pred, target: ``(N, 2)`` normalized coordinates (pixel / side).
        prefix: ``train`` or ``test``.
        side: the canvas side the coordinates were divided by.
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape or pred.ndim != 2:
        raise ConfigError(
            f"predictions of shape {pred.shape} do not match targets of shape {target.shape}",
            hint="a coordinate regressor outputs (i, j) per example",
        )
    if len(pred) == 0:
        return {f"{prefix}_accuracy": None, f"{prefix}_mse": None, f"{prefix}_pixel_error": None}
    right = np.all(np.rint(pred * side) == np.rint(target * side), axis=1)
    return {
        f"{prefix}_accuracy": float(right.mean()),
        f"{prefix}_mse": float(np.mean((pred - target) ** 2)),
        f"{prefix}_pixel_error": float(np.mean(np.linalg.norm((pred - target) * side, axis=1))),
        f"{prefix}_examples": int(len(pred)),
    }


def predict(model: torch.nn.Module, x) -> np.ndarray:
    """The model's outputs for every example of ``x`` (a tensor or a data view), in batches."""
    outputs = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(x), BATCH):
            outputs.append(model(x[start : start + BATCH]).float().cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, 2), dtype=np.float32)


def pixel_metrics_of_run(run_dir: Path) -> dict:
    """The pixel accuracy, MSE and pixel error of a finished regression run on its train and test splits.

    The run's data is rebuilt from its stored config (same seed, same split, same preprocessing fit
    on the same training examples) and its best checkpoint is evaluated.
    """
    from layerlab.data.prepare import prepare_data
    from layerlab.inference.trained import load_trained
    from layerlab.train.config import experiment_from_mapping

    trained = load_trained(run_dir)
    cfg = experiment_from_mapping(trained.config)
    if cfg.data.source != "not-so-clevr" or cfg.data.target != "coordinates":
        raise ConfigError(
            f"run {run_dir.name} is not a Not-so-Clevr coordinate regression",
            hint="the coordconv_pixels probe reads runs with data.target: coordinates",
        )
    data = prepare_data(cfg.data, seed=cfg.seed)
    metrics: dict = {"epoch": trained.epoch}
    for split in ("train", "test"):
        x, y = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
        metrics.update(pixel_metrics(predict(trained.model, x), y.numpy(), split))
    return metrics
