"""A finished run's summary: the evaluated weights on every split, what the run used, and the verdict.

``Trainer.finish`` calls ``run_summary`` with the weights it evaluates (the best epoch's, else the
last); the summary is what ``summary.json``, the lab's run page and ``on_run_end`` callbacks see.
Also the warnings its data report gives before training (``data_report_warnings``).
"""

from __future__ import annotations

import time

import torch

from layerlab.train import rundir
from layerlab.train.metrics import classification_report
from layerlab.train.precision import CompiledOrEager
from layerlab.train.verdict import overfitting_verdict
from layerlab.train.weights import weights_sha256


def run_summary(trainer, model, *, status: str, which: str, final_sha: str, ranks_sha) -> tuple[dict, object]:
    """The summary of ``trainer``'s run with ``model`` evaluated, and the test split's predictions
    (class indices for a classifier, None without a test split; the error figures otherwise)."""
    task, splits, loss_fn, precision = trainer.task, trainer.splits, trainer.loss_fn, trainer.precision
    train_loss, train_acc, train_errors = task.evaluate(model, *splits["train"], loss_fn, precision=precision)
    val_loss, val_acc, val_errors = task.evaluate(model, *splits["val"], loss_fn, precision=precision)
    test_loss, test_acc, test_pred = task.evaluate(model, *splits["test"], loss_fn, precision=precision)
    subspace, strategy = trainer.subspace, trainer.strategy
    summary = {
        "status": status,
        "task": task.name,
        "run_dir": str(trainer.run_dir),
        "epochs": trainer.epochs_done,
        "epochs_planned": trainer.cfg.train.epochs,
        "train_loss": train_loss,
        "train_accuracy": train_acc,
        "val_loss": val_loss,
        "val_accuracy": val_acc,
        "test_loss": test_loss,
        "test_accuracy": test_acc,
        "evaluated_weights": which,
        "best_epoch": trainer.best_epoch,
        "best_metric": trainer.best,
        "monitor": trainer.monitor,
        "weights_sha256": final_sha,
        "best_weights_sha256": weights_sha256(model),
        "train_seconds": round(sum(r.get("seconds") or 0.0 for r in rundir.read_metrics(trainer.run_dir)), 3),
        "seconds": round(time.perf_counter() - trainer.started, 3),
        "device": str(trainer.device),
        "precision": precision.kind,
        "channels_last": precision.channels_last,
        "compile": isinstance(trainer.train_model, CompiledOrEager) and trainer.train_model.active,
        "num_threads": torch.get_num_threads(),  # train.num_threads, or the worker's share of the cores
        "distributed": {**strategy.describe(), "ranks_weights_identical": len(set(ranks_sha)) == 1}
        if strategy.distributed
        else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)
        if subspace is None
        else subspace.dim,
        "subspace": subspace.describe() if subspace is not None else None,
        "frozen": trainer.frozen,
        "classes": trainer.classes,
        "init_from": trainer.finetune,
        "curriculum": trainer.curriculum.describe() if trainer.curriculum is not None else None,
        "data_report": trainer.data_report,
        "warnings": trainer.warnings,
    }
    if not task.classifies:  # MSE / MAE per value (per pixel for a reconstruction)
        for split, errors in (("train", train_errors), ("val", val_errors), ("test", test_pred)):
            summary.update({f"{split}_{k}": v for k, v in (errors or {}).items()})
        summary["verdict"] = task.verdict(train_loss, test_loss, val_loss)
    elif test_pred is not None:
        summary.update(classification_report(splits["test"][1], test_pred, trainer.classes))
        summary["verdict"] = overfitting_verdict(train_acc, test_acc, val_acc)
    else:
        summary["verdict"] = "no test split: set data.split.test above 0 for an honest verdict"
    return summary, test_pred


def data_report_warnings(report: dict | None) -> list[str]:
    """What a data report says a user should know before training: unreadable files skipped, and
    classes without a single training example."""
    report = report or {}
    messages = []
    skipped = report.get("skipped") or []
    if skipped:
        shown = ", ".join(str(s["path"]) for s in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        messages.append(
            f"data: skipped {len(skipped)} unreadable file(s) ({shown}); "
            "summary.json data_report.skipped lists each with its reason"
        )
    empty = [name for name, n in (report.get("counts") or {}).get("train", {}).items() if not n]
    if empty:
        messages.append(
            f"data: {len(empty)} class(es) have no training examples ({', '.join(empty[:5])}"
            f"{', ...' if len(empty) > 5 else ''}); check the labels, data.class_names or data.label_map"
        )
    return messages
