"""The per-epoch hot path: one pass of training and nothing else.

Kept lean on purpose: no dicts, no hooks but an optional stop poll; losses and predictions are
collected as tensors and reduced once per epoch. On the CPU each step's loss is also checked before
its update (a sync costs nothing there), so a diverging batch stops the epoch with the weights of the
step before; on an accelerator the check is made once per epoch (no per-step sync).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from layerlab.train.precision import FLOAT32, Precision

# A loss above this is divergence, not learning: no classification loss of a training network gets
# near it, and float32 sums of such values overflow to infinity within an epoch.
DIVERGED_LOSS = 1e15


def loss_text(value: float | None) -> str:
    """A diverged loss in words: ``nan``, ``inf`` or ``3.4e+37 (above 1e+15)``."""
    if value is None or not math.isfinite(value):
        return str(value)
    return f"{value:.3g} (above {DIVERGED_LOSS:g})"


def diverged_value(value: float) -> bool:
    """True for a loss that means the run diverged: NaN, infinite, or above ``DIVERGED_LOSS``."""
    return not math.isfinite(value) or abs(value) > DIVERGED_LOSS


@dataclass
class EpochResult:
    """What one training epoch produced."""

    loss: float  # mean data loss (penalties excluded, so it compares with val_loss)
    accuracy: float
    batches: int
    bad_batch: int | None  # first batch (1-based) whose loss was NaN, infinite or huge (diverged_value)
    bad_value: float | None
    stopped: bool  # a callback asked to stop mid-epoch
    examples: int = 0  # examples trained on, and how many were predicted right (``train_epoch_shard``)
    correct: int = 0


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
    check_each_step: bool | None = None,
    frozen: Sequence[torch.nn.Module] = (),
    precision: Precision | None = None,
    subset: torch.Tensor | None = None,
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
        check_each_step: check each step's loss (data loss plus penalty) before the update and stop
            at the first diverged one; default: on the CPU only.
        frozen: frozen layers, kept in eval mode (batch-norm statistics fixed, no dropout).
        precision: autocast, grad scaler and input memory format (``train.precision``); None is
            float32, the plain path.
        subset: the examples this epoch trains on (a curriculum's easiest fraction), shuffled by
            ``generator``; None: all of them.
    """
    precision = precision or FLOAT32
    labels = has_labels(y)
    if check_each_step is None:
        check_each_step = x.device.type == "cpu"
    model.train()
    for module in frozen:
        module.eval()
    order = epoch_order(len(x), generator, subset).to(x.device)
    n = len(order)
    params = [p for p in model.parameters() if p.requires_grad] if grad_clip else None
    losses: list[torch.Tensor] = []
    predictions: list[torch.Tensor] = []
    stopped = False
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        xb, yb = x[index], y[index]
        if augment is not None:
            xb = augment(xb)
        out = precision.forward(model, xb)
        loss = loss_fn(out, yb)
        losses.append(loss.detach())
        if penalty is not None:
            loss = loss + penalty()
        if check_each_step:
            value = float(loss.detach())
            if diverged_value(value):
                data_value = float(losses[-1])
                shown = data_value if diverged_value(data_value) else value  # else the penalty diverged
                return EpochResult(float("nan"), float("nan"), len(losses), len(losses), shown, stopped)
        optimizer.zero_grad(set_to_none=True)
        precision.backward_step(loss, optimizer, params, grad_clip)
        if labels:
            predictions.append(out.detach().argmax(1))
        if stop_poll is not None and stop_poll():
            stopped = True
            break
    if not labels:  # values or inputs to reconstruct: no accuracy
        return _reduce(losses, None, None, batch_size, stopped, seen=min(n, len(losses) * batch_size))
    return _reduce(losses, predictions, y[order], batch_size, stopped)


def has_labels(y) -> bool:
    """Whether training targets are class labels (integers) rather than values or inputs (floats)."""
    return isinstance(y, torch.Tensor) and not y.is_floating_point()


def epoch_order(n: int, generator: torch.Generator, subset: torch.Tensor | None = None) -> torch.Tensor:
    """The epoch's example order: a seeded permutation of all ``n`` examples, or of ``subset``."""
    if subset is None:
        return torch.randperm(n, generator=generator)
    return subset.cpu()[torch.randperm(len(subset), generator=generator)]


def _reduce(losses, predictions, y_ordered, batch_size, stopped, seen=None) -> EpochResult:
    """One sync per epoch: batch losses and predictions (None: no accuracy, ``seen`` examples) become
    the epoch's numbers."""
    if not losses:
        return EpochResult(float("nan"), float("nan"), 0, None, None, stopped)
    batch_losses = torch.stack(losses).double()  # float64: an epoch of huge float32 losses must not overflow
    pred = torch.cat(predictions) if predictions is not None else None
    seen = len(pred) if pred is not None else seen
    sizes = torch.full((len(losses),), float(batch_size), device=batch_losses.device)
    sizes[-1] = seen - batch_size * (len(losses) - 1)
    finite = torch.isfinite(batch_losses) & (batch_losses.abs() <= DIVERGED_LOSS)
    if not bool(finite.all()):
        first = int((~finite).nonzero()[0, 0])
        return EpochResult(
            float("nan"), float("nan"), len(losses), first + 1, float(batch_losses[first]), stopped
        )
    loss = float((batch_losses * sizes).sum() / seen)
    if pred is None:
        return EpochResult(loss, float("nan"), len(losses), None, None, stopped)
    accuracy = float((pred == y_ordered[:seen]).float().mean())
    return EpochResult(loss, accuracy, len(losses), None, None, stopped)


def train_epoch_shard(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable,
    generator: torch.Generator,
    rank: int,
    world_size: int,
    penalty: Callable[[], torch.Tensor] | None = None,
    grad_clip: float | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    frozen: Sequence[torch.nn.Module] = (),
    precision: Precision | None = None,
    subset: torch.Tensor | None = None,
) -> EpochResult:
    """One epoch of one rank of a data-parallel group (``model`` is the DDP-wrapped network).

    Every rank draws the same permutation from ``generator``; each step trains on this rank's
    contiguous part of the global batch of ``batch_size`` (``distributed.step_slices``) with its mean
    loss scaled so that DDP's average of the ranks' gradients is the global batch's gradient. The
    loss is checked once per epoch (the ranks see different losses: a per-step stop of one rank
    would leave the others waiting); ``loss`` and ``accuracy`` are this rank's, the caller reduces
    them over the group (``examples`` and ``correct`` are the sums to add).
    """
    from layerlab.train.distributed import loss_scale, step_slices

    precision = precision or FLOAT32
    model.train()
    for module in frozen:
        module.eval()
    labels = has_labels(y)
    order = epoch_order(len(x), generator, subset).to(x.device)  # a curriculum's subset: same on every rank
    params = [p for p in model.parameters() if p.requires_grad] if grad_clip else None
    losses: list[torch.Tensor] = []
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    sizes: list[int] = []
    for start, stop, size in step_slices(len(order), batch_size, world_size, rank):
        index = order[start:stop]
        xb, yb = x[index], y[index]
        if augment is not None:
            xb = augment(xb)
        out = precision.forward(model, xb)
        loss = loss_fn(out, yb)
        losses.append(loss.detach())
        sizes.append(len(index))
        if penalty is not None:
            loss = loss + penalty()
        optimizer.zero_grad(set_to_none=True)
        precision.backward_step(loss * loss_scale(len(index), size, world_size), optimizer, params, grad_clip)
        if labels:
            correct += (out.detach().argmax(1) == yb).sum()
    if not losses:
        return EpochResult(float("nan"), float("nan"), 0, None, None, False)
    batch_losses = torch.stack(losses).double()
    finite = torch.isfinite(batch_losses) & (batch_losses.abs() <= DIVERGED_LOSS)
    seen = sum(sizes)
    if not bool(finite.all()):
        first = int((~finite).nonzero()[0, 0])
        return EpochResult(
            float("nan"), float("nan"), len(losses), first + 1, float(batch_losses[first]), False
        )
    total = float((batch_losses * torch.tensor(sizes, dtype=torch.float64, device=x.device)).sum())
    right = int(correct)
    return EpochResult(total / seen, right / seen, len(losses), None, None, False, seen, right)
