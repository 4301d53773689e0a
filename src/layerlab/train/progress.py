"""Progress display as a callback: a rich bar with ETA on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
from typing import TextIO

from layerlab.train.callbacks import Callback


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def epoch_line(epoch: int, total: int, m: dict) -> str:
    """One epoch's metrics as a short line."""
    return (
        f"epoch {epoch}/{total}  train loss {_num(m.get('train_loss'))} acc {_pct(m.get('train_accuracy'))}  "
        f"val loss {_num(m.get('val_loss'))} acc {_pct(m.get('val_accuracy'))}  lr {_num(m.get('lr'))}  "
        f"{m.get('seconds', 0):.2f}s"
    )


class ProgressCallback(Callback):
    """Shows training progress on ``stream`` (a rich progress bar when it is a terminal).

    Args:
        stream: where to write (stdout normally, stderr when stdout carries JSON).
        rich_bar: force the bar on or off (None: only when ``stream`` is a terminal).
    """

    def __init__(self, stream: TextIO | None = None, rich_bar: bool | None = None):
        self.stream = stream or sys.stdout
        self.rich_bar = self.stream.isatty() if rich_bar is None else rich_bar
        self.progress = None
        self.task = None
        self.total = 0

    def on_run_start(self, trainer, info: dict) -> None:
        self.total = info["epochs"]
        start = info["start_epoch"]
        what = "resuming" if info.get("resumed") else "training"
        header = (
            f"{what} {info['run_dir']} at epoch {start}/{self.total}: {info['parameters']:,} parameters, "
            f"{_learns(trainer, info)}, {info['device']}"
        )
        init = info.get("init_from")
        if init and not info.get("resumed"):
            skipped = ", ".join(s["layer"] for s in init["skipped"]) or "none"
            header += f"\ninit_from {init['source']}: loaded {', '.join(init['loaded']) or 'nothing'}; skipped {skipped}"
        print(header, file=self.stream, flush=True)
        if self.rich_bar:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]epochs"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=Console(file=self.stream),
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("", total=self.total, completed=start - 1)

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        if self.progress is not None:
            text = (
                f"loss {_num(metrics.get('train_loss'))} acc {_pct(metrics.get('train_accuracy'))} "
                f"val {_pct(metrics.get('val_accuracy'))}"
            )
            self.progress.update(self.task, completed=epoch, description=text)
        else:
            print(epoch_line(epoch, self.total, metrics), file=self.stream, flush=True)

    def on_run_end(self, trainer, summary: dict) -> None:
        self.close()

    def close(self) -> None:
        """Stop the bar (also called when the run fails, so the terminal is left clean)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _learns(trainer, info: dict) -> str:
    """``10 classes``, ``2 values (i, j)`` or ``its input``: what the run learns (``train.task``)."""
    task = getattr(getattr(trainer, "task", None), "name", "classification")
    if task == "reconstruction":
        return "reconstructs its input"
    if task == "regression":
        return f"{len(info['classes'])} values ({', '.join(info['classes'][:4])})"
    return f"{len(info['classes'])} classes"
