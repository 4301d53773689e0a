"""Evaluate a trained run or checkpoint on new data, readied with the run's own preprocessing."""

from __future__ import annotations

from pathlib import Path

from layerlab.inference.trained import load_trained
from layerlab.train import adapters
from layerlab.train.config import experiment_from_mapping
from layerlab.train.losses import make_loss
from layerlab.train.metrics import classification_report, evaluate_split
from layerlab.train.tasks import task_of


def evaluate_run(
    run_or_checkpoint: str | Path, source: str, *, device: str = "auto", cache_dir: Path | None = None
) -> dict:
    """Accuracy, loss, confusion matrix and per-class accuracy of a run on ``source``.

    Args:
        run_or_checkpoint: a run directory (its best checkpoint) or a checkpoint file.
        source: ``kind:path`` (e.g. ``imagefolder:/data/photos``) or a YAML file with a ``data`` section.
        device: ``auto``, ``cpu`` or ``cuda``.
        cache_dir: where decoded datasets are cached.
    """
    trained = load_trained(run_or_checkpoint, device=device)
    x, y, classes = adapters.load_evaluation_data(source, trained.preprocessing, cache_dir=cache_dir)
    device_of = next(trained.model.parameters()).device
    train_cfg = experiment_from_mapping(trained.config).train
    task = task_of(train_cfg)
    if not task.classifies:
        return _evaluate_values(trained, task, train_cfg, x.to(device_of), y.to(device_of), source)
    x, y = x.to(device_of), y.long().to(device_of)
    loss_fn = make_loss(train_cfg, len(trained.classes))
    loss, accuracy, pred = evaluate_split(trained.model, x, y, loss_fn)
    result = {
        "checkpoint": str(trained.checkpoint),
        "epoch": trained.epoch,
        "source": str(source),
        "n": len(y),
        "accuracy": accuracy,
        "loss": loss,
        "classes": list(trained.classes),
    }
    if pred is not None:
        result.update(classification_report(y, pred, list(trained.classes)))
    else:
        result.update(confusion_matrix=None, per_class_accuracy={})
    return result


def _evaluate_values(trained, task, train_cfg, x, y, source) -> dict:
    """Loss, MSE and MAE per value of a regression (targets from the source) or a reconstruction (the
    inputs themselves: the test MSE per pixel on clean inputs)."""
    targets = task.targets("evaluation", x, y, list(trained.classes))
    if task.name == "regression" and targets.shape[1:] != (len(trained.classes),):
        from layerlab.core.errors import DataError

        raise DataError(
            f"this source gives {targets.shape[1]} value(s) per example but the run learned {len(trained.classes)}",
            where=str(source),
        )
    loss, _, errors = task.evaluate(
        trained.model, x, targets, task.make_loss(train_cfg, len(trained.classes))
    )
    return {
        "checkpoint": str(trained.checkpoint),
        "epoch": trained.epoch,
        "source": str(source),
        "task": task.name,
        "n": len(x),
        "loss": loss,
        "mse": (errors or {}).get("mse"),
        "mae": (errors or {}).get("mae"),
        "classes": list(trained.classes),
    }
