"""Callbacks: how progress, early stopping and the server's cancel button hook into the loop."""

from __future__ import annotations

import math
import re
from pathlib import Path

from layerlab.core.errors import ConfigError


class Callback:
    """Lightning-style hooks; every one is a no-op unless overridden.

    Every hook receives the ``Trainer`` first (``layerlab.train.runner.Trainer``: its ``model``,
    ``optimizer``, ``splits``, ``run_dir``, ``strategy``, ``epoch``...), so a callback can look at the
    model and the data from inside a run. A callback runs in the writing process only (rank 0 of a
    distributed run) unless it sets ``all_ranks = True`` (early stopping does: every rank must stop at
    the same epoch). Its ``state_dict`` is stored in checkpoints under its ``state_key``.
    """

    all_ranks = False  # True: run on every rank of a distributed run, not only on the writer

    @property
    def state_key(self) -> str:
        """The key of this callback's state in a checkpoint: stable across runs and list positions.

        The class's qualified name by default; override it (e.g. adding the monitored metric) when a
        run may hold two stateful callbacks of one class.
        """
        return type(self).__qualname__

    def on_run_start(self, trainer, info: dict) -> None:
        """Called once before the first epoch (run_dir, epochs, start_epoch, classes, params, device)."""

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        """Called after each epoch with the row written to metrics.jsonl."""

    def on_before_write(self, trainer, what: str) -> None:
        """Called just before the engine writes into the run directory (``start``, ``metrics``,
        ``checkpoint``, ``summary``); raising stops the run before that write (a worker that lost it)."""

    def on_checkpoint(self, trainer, path: Path, epoch: int, kind: str) -> None:
        """Called after a checkpoint file has been written; ``kind`` is ``best``, ``numbered`` or ``last``
        (``layerlab.core.runlayout.KIND_*``), ``epoch`` the epoch whose state it holds."""

    def on_run_end(self, trainer, summary: dict) -> None:
        """Called once with the summary (also written to summary.json)."""

    def should_stop(self, trainer) -> bool:
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


def improves(value: float, best: float | None, metric: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` of ``metric`` beats ``best`` by more than ``min_delta`` (losses are minimized)."""
    if best is None:
        return True
    return value < best - min_delta if metric.endswith("loss") else value > best + min_delta


class EarlyStopping(Callback):
    """Stop when ``metric`` has not improved by ``min_delta`` for ``patience`` epochs.

    Args:
        metric: a key of the epoch metrics (``val_loss``, ``val_accuracy``...); losses are minimized.
        patience: epochs without improvement tolerated.
        min_delta: the smallest change that counts as an improvement.
    """

    all_ranks = True  # a decision every rank takes alike, on the same (reduced) metrics

    def __init__(self, metric: str = "val_loss", patience: int = 5, min_delta: float = 0.0):
        self.metric = metric
        self.patience = patience
        self.min_delta = min_delta
        self.mode = "min" if metric.endswith("loss") else "max"
        self.best: float | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    def improved(self, value: float) -> bool:
        return improves(value, self.best, self.metric, self.min_delta)

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        value = metrics.get(self.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        if self.improved(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch

    def should_stop(self, trainer=None) -> bool:
        return self.stopped_epoch is not None

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best = state.get("best")
        self.wait = int(state.get("wait", 0))
        self.stopped_epoch = state.get("stopped_epoch")


class CallbackList:
    """Fans each hook out to several callbacks; keeps the per-batch stop poll cheap.

    Raises:
        ValueError: two stateful callbacks share a ``state_key`` (their states would overwrite each other).
    """

    def __init__(self, callbacks):
        self.callbacks = list(callbacks)
        self.pollers = tuple(cb for cb in self.callbacks if polls_stop(cb))
        self.batch_pollers = self.pollers  # kept for callers that test whether anything polls
        keys: dict[str, Callback] = {}
        for cb in self.callbacks:
            if not _stateful(cb):
                continue
            if cb.state_key in keys:
                raise ValueError(
                    f"callbacks {type(keys[cb.state_key]).__name__} and {type(cb).__name__} share the state_key "
                    f"'{cb.state_key}': give one of them its own state_key"
                )
            keys[cb.state_key] = cb

    def on_run_start(self, trainer, info: dict) -> None:
        for cb in self.callbacks:
            cb.on_run_start(trainer, info)

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(trainer, epoch, metrics)

    def on_before_write(self, trainer, what: str) -> None:
        for cb in self.callbacks:
            cb.on_before_write(trainer, what)

    def on_checkpoint(self, trainer, path: Path, epoch: int, kind: str) -> None:
        for cb in self.callbacks:
            cb.on_checkpoint(trainer, path, epoch, kind)

    def on_run_end(self, trainer, summary: dict) -> None:
        for cb in self.callbacks:
            cb.on_run_end(trainer, summary)

    def should_stop(self, trainer) -> bool:
        return any(cb.should_stop(trainer) for cb in self.pollers)

    def state_dicts(self) -> dict[str, dict]:
        """Each stateful callback's state under its ``state_key``."""
        return {cb.state_key: cb.state_dict() for cb in self.callbacks if _stateful(cb)}

    def load_state_dicts(self, states: dict[str, dict]) -> None:
        """Restore each callback from its ``state_key``; a callback without one (a checkpoint written
        before a callback was added) keeps its fresh state.

        Checkpoints written before state keys existed stored ``"<position>:<class name>"``: such an
        entry still restores the callback of that class (at that position, else the only one of it).
        """
        legacy = {k: v for k, v in states.items() if _LEGACY_KEY.match(k)}
        by_class: dict[str, list[dict]] = {}
        for key, state in legacy.items():
            by_class.setdefault(key.split(":", 1)[1], []).append(state)
        for i, cb in enumerate(self.callbacks):
            if cb.state_key in states:
                state = states[cb.state_key]
            elif f"{i}:{type(cb).__name__}" in legacy:
                state = legacy[f"{i}:{type(cb).__name__}"]
            elif len(by_class.get(type(cb).__name__, ())) == 1:
                state = by_class[type(cb).__name__][0]
            else:
                state = None
            if state:
                cb.load_state_dict(state)


_LEGACY_KEY = re.compile(r"^\d+:\w+$")


def _stateful(callback: Callback) -> bool:
    """Whether a callback overrides ``state_dict`` (only those are stored in checkpoints)."""
    return type(callback).state_dict is not Callback.state_dict


def monitor_and_stopper(early_stopping, has_val: bool) -> tuple[str, list[Callback]]:
    """The metric that picks the best epoch, and the ``EarlyStopping`` of ``train.early_stopping``
    (none with patience 0). A ``val_`` metric without a validation split falls back to
    ``train_loss``, unless early stopping needs it (then a ``ConfigError``)."""
    es = early_stopping
    monitor = es.metric
    if es.metric.startswith("val_") and not has_val:
        if es.patience > 0:
            raise ConfigError(
                f"early stopping on {es.metric} needs a validation split",
                hint="set data.split.val above 0 or train.early_stopping.metric=train_loss",
                where="train.early_stopping.metric",
            )
        monitor = "train_loss"
    return monitor, ([EarlyStopping(es.metric, es.patience, es.min_delta)] if es.patience > 0 else [])
