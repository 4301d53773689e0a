"""Evaluation metrics: loss and accuracy over a split, confusion matrix and per-class accuracy."""

from __future__ import annotations

import torch

VIEW_BATCH_BYTES = 16 * 1024 * 1024  # float32 bytes of one evaluation batch read from a data view
MAX_CONFUSION_CLASSES = 100  # above this a confusion matrix is omitted (not-so-clevr has 3,136 classes)


@torch.no_grad()
def predict_batches(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Logits for ``x`` in eval mode, batch by batch."""
    outputs = [model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(outputs) if outputs else x.new_zeros((0,))


@torch.no_grad()
def evaluate_split(model, x: torch.Tensor, y: torch.Tensor, loss_fn, batch_size: int = 512, precision=None):
    """``(loss, accuracy, predictions)`` of ``model`` on one split (None, None, None when empty).

    Args:
        model: the network, switched to eval mode here.
        x, y: inputs and integer labels.
        loss_fn: ``(logits, labels) -> scalar``.
        batch_size: examples per forward pass.
        precision: the run's ``train.precision.Precision`` (autocast, logits back to float32); None: float32.
    """
    if len(x) == 0:
        return None, None, None
    if not isinstance(x, torch.Tensor):  # a data view decodes each batch anew: bound its float32 bytes
        batch_size = max(1, min(batch_size, VIEW_BATCH_BYTES // (4 * max(1, x.numel() // len(x)))))
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=x.device)  # huge float32 losses must not overflow
    preds = []
    for i in range(0, len(x), batch_size):
        out = (
            model(x[i : i + batch_size])
            if precision is None
            else precision.forward(model, x[i : i + batch_size])
        )
        yb = y[i : i + batch_size]
        total += loss_fn(out, yb).detach() * len(yb)
        preds.append(out.argmax(1))
    pred = torch.cat(preds)
    loss = (total / len(x)).item()
    accuracy = (pred == y).float().mean().item()
    return loss, accuracy, pred


def confusion_matrix(y: torch.Tensor, pred: torch.Tensor, num_classes: int) -> list[list[int]]:
    """Rows are true classes, columns predicted ones."""
    index = y.to("cpu").long() * num_classes + pred.to("cpu").long()
    counts = torch.bincount(index, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes).tolist()


def per_class_accuracy(y: torch.Tensor, pred: torch.Tensor, classes: list[str]) -> dict[str, float | None]:
    """Accuracy of each class (None for a class absent from ``y``)."""
    y, pred = y.to("cpu"), pred.to("cpu")
    n = len(classes)
    totals = torch.bincount(y, minlength=n)
    hits = torch.bincount(y[pred == y], minlength=n)
    return {
        name: (hits[i].item() / totals[i].item() if totals[i] else None) for i, name in enumerate(classes)
    }


def classification_report(y: torch.Tensor, pred: torch.Tensor, classes: list[str]) -> dict:
    """Confusion matrix (or a note when there are too many classes) and per-class accuracy."""
    report: dict = {"per_class_accuracy": per_class_accuracy(y, pred, classes)}
    if len(classes) > MAX_CONFUSION_CLASSES:
        report["confusion_matrix"] = None
        report["confusion_matrix_note"] = (
            f"omitted: {len(classes)} classes is more than {MAX_CONFUSION_CLASSES}"
        )
    else:
        report["confusion_matrix"] = confusion_matrix(y, pred, len(classes))
    return report
