"""Losses from config (cross-entropy, multiclass hinge, squared hinge, mse) and L1/L2 penalties."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from layerlab.train.config import TrainConfig

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def multiclass_hinge(scores: torch.Tensor, target: torch.Tensor, margin: float = 1.0, squared: bool = False):
    """CS231n's multiclass SVM loss: sum over wrong classes of max(0, s_j - s_y + margin), batch mean.

    The correct class contributes exactly ``margin`` (or ``margin**2``) to the sum, which is subtracted
    instead of masked: one fewer op on the hot path.
    """
    correct = scores.gather(1, target.unsqueeze(1))
    margins = (scores - correct + margin).clamp_min(0)
    if squared:
        return (margins * margins).sum(1).mean() - margin * margin
    return margins.sum(1).mean() - margin


def make_loss(cfg: TrainConfig, num_classes: int) -> LossFn:
    """The loss function ``(logits, labels) -> scalar`` named by ``train.loss``.

    Args:
        cfg: the train section (loss, label_smoothing, hinge_margin).
        num_classes: number of classes (for mse's one-hot targets).
    """
    if cfg.loss == "cross_entropy":
        smoothing = cfg.label_smoothing
        if smoothing:
            return lambda out, y: F.cross_entropy(out, y, label_smoothing=smoothing)
        return F.cross_entropy
    if cfg.loss in ("hinge", "squared_hinge"):
        margin, squared = cfg.hinge_margin, cfg.loss == "squared_hinge"
        return lambda out, y: multiclass_hinge(out, y, margin, squared)
    if cfg.loss == "mse":
        return lambda out, y: F.mse_loss(out, F.one_hot(y, num_classes).to(out.dtype))
    raise ValueError(f"unknown loss {cfg.loss}")  # unreachable: the config checks the name


def make_penalty(cfg: TrainConfig, model: torch.nn.Module) -> Callable[[], torch.Tensor] | None:
    """``l1 * sum|w| + 1/2 * l2 * sum w^2`` over trainable weights (biases and norm scales excluded), or None.

    The 1/2 is CS231n's convention: the L2 term's gradient is then ``l2 * w``, exactly what an
    optimizer's ``weight_decay: l2`` adds (plain SGD takes the same steps either way).

    Args:
        cfg: the train section (l1, l2).
        model: the network; frozen parameters are not penalized.
    """
    if not cfg.l1 and not cfg.l2:
        return None
    weights = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    l1, half_l2 = cfg.l1, 0.5 * cfg.l2

    def penalty() -> torch.Tensor:
        total = weights[0].new_zeros(())
        for w in weights:
            if l1:
                total = total + l1 * w.abs().sum()
            if half_l2:
                total = total + half_l2 * (w * w).sum()
        return total

    return penalty if weights else None
