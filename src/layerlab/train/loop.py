"""The per-epoch hot path: one pass of training and nothing else.

Kept lean on purpose: no per-step ``.item()``, no dicts, no hooks but an optional stop poll;
losses and predictions are collected as tensors and reduced once per epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class EpochResult:
    """What one training epoch produced."""

    loss: float  # mean data loss (penalties excluded, so it compares with val_loss)
    accuracy: float
    batches: int
    bad_batch: int | None  # first batch (1-based) whose loss was NaN or infinite
    bad_value: float | None
    stopped: bool  # a callback asked to stop mid-epoch


def train_epoch(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable,
    generator: torch.Generator,
    penalty: Callable[[], torch.Tensor] | None = None,
    grad_clip: float | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    stop_poll: Callable[[], bool] | None = None,
) -> EpochResult:
    """Train one epoch over ``x, y`` in the order given by ``generator``.

    Args:
        model: the network (switched to train mode).
        x, y: training inputs and integer labels, already on the model's device.
        batch_size: examples per step (the last batch may be smaller).
        optimizer, loss_fn: the step's optimizer and ``(logits, labels) -> loss``.
        generator: CPU generator for the shuffle (seeded from seed and epoch for exact resume).
        penalty: extra loss term (L1/L2), or None.
        grad_clip: max global gradient norm, or None.
        augment: transforms an input batch, or None.
        stop_poll: called after each step; True ends the epoch early.
    """
    model.train()
    n = len(x)
    order = torch.randperm(n, generator=generator).to(x.device)
    params = [p for p in model.parameters() if p.requires_grad] if grad_clip else None
    losses: list[torch.Tensor] = []
    predictions: list[torch.Tensor] = []
    stopped = False
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        xb, yb = x[index], y[index]
        if augment is not None:
            xb = augment(xb)
        out = model(xb)
        loss = loss_fn(out, yb)
        losses.append(loss.detach())
        if penalty is not None:
            loss = loss + penalty()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if params is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        predictions.append(out.detach().argmax(1))
        if stop_poll is not None and stop_poll():
            stopped = True
            break
    return _reduce(losses, predictions, y[order], batch_size, stopped)


def _reduce(losses, predictions, y_ordered, batch_size, stopped) -> EpochResult:
    """One sync per epoch: batch losses and predictions become the epoch's numbers."""
    if not losses:
        return EpochResult(float("nan"), float("nan"), 0, None, None, stopped)
    batch_losses = torch.stack(losses).float()
    pred = torch.cat(predictions)
    seen = len(pred)
    sizes = torch.full((len(losses),), float(batch_size), device=batch_losses.device)
    sizes[-1] = seen - batch_size * (len(losses) - 1)
    finite = torch.isfinite(batch_losses)
    if not bool(finite.all()):
        first = int((~finite).nonzero()[0, 0])
        return EpochResult(
            float("nan"), float("nan"), len(losses), first + 1, float(batch_losses[first]), stopped
        )
    loss = float((batch_losses * sizes).sum() / seen)
    accuracy = float((pred == y_ordered[:seen]).float().mean())
    return EpochResult(loss, accuracy, len(losses), None, None, stopped)
