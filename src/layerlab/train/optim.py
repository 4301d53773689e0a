"""Optimizers and learning-rate schedules from config, over parameter groups with lr factors."""

from __future__ import annotations

import math

import torch

from layerlab.train.config import TrainConfig


def make_optimizer(cfg: TrainConfig, groups: list[dict]) -> torch.optim.Optimizer:
    """The optimizer named by ``train.optimizer``.

    Args:
        cfg: the train section (optimizer, lr, momentum, nesterov, weight_decay).
        groups: ``{"params": [...], "lr_factor": f}`` dicts; each group's lr is ``cfg.lr * f``.
    """
    param_groups = [
        {"params": g["params"], "lr": cfg.lr * g["lr_factor"], "lr_factor": g["lr_factor"]} for g in groups
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            param_groups,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
        )
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            param_groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer}")  # unreachable: the config checks the name


def make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer):
    """The schedule named by ``train.schedule.kind`` (None for ``none``), stepped once per epoch.

    Step and cosine are LambdaLR factors applied to every group's initial lr, and plateau multiplies
    every group by ``gamma`` (with per-group floors), so groups keep their lr ratios.
    """
    s = cfg.schedule
    if s.kind == "none":
        return None
    if s.kind == "step":
        step, gamma = s.step_size, s.gamma
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: gamma ** (e // step))
    if s.kind == "cosine":
        floor, total = min(s.min_lr / cfg.lr, 1.0), max(cfg.epochs, 1)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda e: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(e, total) / total))
        )
    if s.kind == "plateau":
        floors = [s.min_lr * g["lr_factor"] for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=s.gamma, patience=s.patience, min_lr=floors
        )
    raise ValueError(f"unknown schedule {s.kind}")


def scheduler_step(scheduler, monitored_loss: float | None) -> None:
    """Advance the schedule one epoch (plateau watches ``monitored_loss``, skipped when there is none)."""
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if monitored_loss is not None:
            scheduler.step(monitored_loss)
        return
    scheduler.step()


def base_lr(optimizer: torch.optim.Optimizer) -> float:
    """The scheduled lr of a factor-1 group (what the config's ``lr`` has become)."""
    group = optimizer.param_groups[0]
    return group["lr"] / group.get("lr_factor", 1.0)
