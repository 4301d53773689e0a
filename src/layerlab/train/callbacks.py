"""Callbacks: how progress, early stopping and the server's cancel button hook into the loop."""

from __future__ import annotations

import math
from pathlib import Path


class Callback:
    """Lightning-style hooks; every one is a no-op unless overridden."""

    def on_run_start(self, info: dict) -> None:
        """Called once before the first epoch (run_dir, epochs, start_epoch, classes, params, device)."""

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        """Called after each epoch with the row written to metrics.jsonl."""

    def on_checkpoint(self, path: Path, epoch: int) -> None:
        """Called after a numbered checkpoint has been written."""

    def on_run_end(self, summary: dict) -> None:
        """Called once with the summary (also written to summary.json)."""

    def should_stop(self) -> bool:
        """Polled after every batch and epoch; True ends the run cleanly."""
        return False

    def state_dict(self) -> dict:
        """State saved in checkpoints, so the callback survives a resume."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""


def polls_stop(callback: Callback) -> bool:
    """Whether a callback overrides ``should_stop`` (only those are polled on the per-batch hot path)."""
    return type(callback).should_stop is not Callback.should_stop


class EarlyStopping(Callback):
    """Stop when ``metric`` has not improved by ``min_delta`` for ``patience`` epochs.

    Args:
        metric: a key of the epoch metrics (``val_loss``, ``val_accuracy``...); losses are minimized.
        patience: epochs without improvement tolerated.
        min_delta: the smallest change that counts as an improvement.
    """

    def __init__(self, metric: str = "val_loss", patience: int = 5, min_delta: float = 0.0):
        self.metric = metric
        self.patience = patience
        self.min_delta = min_delta
        self.mode = "min" if metric.endswith("loss") else "max"
        self.best: float | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        value = metrics.get(self.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        if self.improved(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch

    def should_stop(self) -> bool:
        return self.stopped_epoch is not None

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best = state.get("best")
        self.wait = int(state.get("wait", 0))
        self.stopped_epoch = state.get("stopped_epoch")


class CallbackList:
    """Fans each hook out to several callbacks; keeps the per-batch stop poll cheap."""

    def __init__(self, callbacks):
        self.callbacks = list(callbacks)
        self.batch_pollers = tuple(cb.should_stop for cb in self.callbacks if polls_stop(cb))

    def on_run_start(self, info: dict) -> None:
        for cb in self.callbacks:
            cb.on_run_start(info)

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, metrics)

    def on_checkpoint(self, path: Path, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_checkpoint(path, epoch)

    def on_run_end(self, summary: dict) -> None:
        for cb in self.callbacks:
            cb.on_run_end(summary)

    def should_stop(self) -> bool:
        return any(poll() for poll in self.batch_pollers)

    def state_dicts(self) -> dict[str, dict]:
        """Each stateful callback's state, keyed by class name and position (stable across a resume)."""
        return {f"{i}:{type(cb).__name__}": cb.state_dict() for i, cb in enumerate(self.callbacks)}

    def load_state_dicts(self, states: dict[str, dict]) -> None:
        for i, cb in enumerate(self.callbacks):
            state = states.get(f"{i}:{type(cb).__name__}")
            if state:
                cb.load_state_dict(state)
