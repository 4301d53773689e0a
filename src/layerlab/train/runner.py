"""``train_experiment``: one run from config to summary, with checkpoints and exact resume."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from layerlab.core.errors import ConfigError, DataError, DivergedError
from layerlab.train import adapters, rundir
from layerlab.train.callbacks import Callback, CallbackList, EarlyStopping
from layerlab.train.checkpoint import (
    BEST,
    CHECKPOINT_DIR,
    LAST,
    checkpoint_bytes,
    checkpoint_load,
    load_latest_valid,
    prune_numbered,
    to_plain,
    write_atomic,
)
from layerlab.train.config import ExperimentConfig
from layerlab.train.device import pick_device
from layerlab.train.finetune import init_from, param_groups
from layerlab.train.loop import train_epoch
from layerlab.train.losses import make_loss, make_penalty
from layerlab.train.metrics import classification_report, evaluate_split
from layerlab.train.optim import base_lr, make_optimizer, make_scheduler, scheduler_step
from layerlab.train.rng import capture_rng, restore_rng, seed_everything, shuffle_generator
from layerlab.train.verdict import overfitting_verdict
from layerlab.train.weights import weights_finite, weights_sha256

logger = logging.getLogger("layerlab.train")

DIVERGED_HINT = "lower train.lr, e.g. --set train.lr=0.0001, or add grad_clip"


def _better(value: float, best: float | None, metric: str) -> bool:
    if best is None:
        return True
    return value < best if metric.endswith("loss") else value > best


class _Run:
    """The state of one run while it trains (kept off the hot path)."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path, device: torch.device, warnings: list[str]):
        self.cfg, self.run_dir, self.device, self.warnings = cfg, run_dir, device, warnings

    def warn(self, message: str) -> None:
        logger.warning(message)
        self.warnings.append(message)

    def setup(self, state: dict | None, callbacks: Sequence[Callback], cache_dir: Path | None) -> None:
        cfg = self.cfg
        if cfg.train.num_threads:
            torch.set_num_threads(cfg.train.num_threads)
        seed_everything(cfg.seed)
        data = adapters.prepare_data(cfg.data, seed=cfg.seed, cache_dir=cache_dir)
        self.classes = [str(c) for c in data.classes]
        self.input_shape = [int(s) for s in data.input_shape]
        self.preprocessing = adapters.preprocessing_to_dict(data.preprocessing)
        report = getattr(data, "report", None)
        self.data_report = to_plain(report.to_dict() if hasattr(report, "to_dict") else report)
        skipped = (self.data_report or {}).get("skipped") or []
        if skipped:
            shown = ", ".join(str(s["path"]) for s in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
            self.warn(
                f"data: skipped {len(skipped)} unreadable file(s) ({shown}); "
                "summary.json data_report.skipped lists each with its reason"
            )
        empty = [
            name
            for name, n in ((self.data_report or {}).get("counts") or {}).get("train", {}).items()
            if not n
        ]
        if empty:
            self.warn(
                f"data: {len(empty)} class(es) have no training examples ({', '.join(empty[:5])}"
                f"{', ...' if len(empty) > 5 else ''}); check the labels, data.class_names or data.label_map"
            )
        num_classes = len(self.classes)
        splits = {}
        for split in ("train", "val", "test"):
            x, y = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
            y = torch.as_tensor(y).long()
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
                raise DataError(
                    f"{split} labels range over {int(y.min())}..{int(y.max())} but there are {num_classes} classes",
                    hint="check data.label_map or data.class_names",
                    where="data",
                )
            splits[split] = (torch.as_tensor(x).float().to(self.device), y.to(self.device))
        self.splits = splits
        if len(splits["train"][0]) == 0:
            raise DataError(
                "the training split is empty",
                hint="use more data or smaller val/test fractions",
                where="data.split",
            )

        torch.manual_seed(cfg.seed)  # weights do not depend on how much RNG the data loader used
        if state is None:
            self.network, summary, self.model = adapters.network_from_config(
                cfg.model, input_shape=self.input_shape, num_classes=num_classes
            )
            self.finetune = init_from(self.model, cfg.model.init_from) if cfg.model.init_from else None
            if self.finetune:
                skipped = ", ".join(s["layer"] for s in self.finetune["skipped"]) or "none"
                logger.info(
                    "init_from %s: loaded %s; skipped %s",
                    self.finetune["source"],
                    self.finetune["loaded"],
                    skipped,
                )
        else:
            self.network, summary = state["network"], None
            self.model = adapters.network_from_dict(self.network)
            self.finetune = state.get("finetune")
        groups, self.frozen = param_groups(self.model, cfg.model, (self.finetune or {}).get("loaded", []))
        self.model.to(self.device)
        self.optimizer = make_optimizer(cfg.train, groups)
        self.scheduler = make_scheduler(cfg.train, self.optimizer)
        self.loss_fn = make_loss(cfg.train, num_classes)
        self.penalty = make_penalty(cfg.train, self.model)
        self.augment = adapters.make_augmenter(cfg.data.augment)

        has_val = len(splits["val"][0]) > 0
        es = cfg.train.early_stopping
        if es.metric.startswith("val_") and not has_val:
            if es.patience > 0:
                raise ConfigError(
                    f"early stopping on {es.metric} needs a validation split",
                    hint="set data.split.val above 0 or train.early_stopping.metric=train_loss",
                    where="train.early_stopping.metric",
                )
            self.monitor = "train_loss"
        else:
            self.monitor = es.metric
        internal = [EarlyStopping(es.metric, es.patience, es.min_delta)] if es.patience > 0 else []
        self.callbacks = CallbackList([*internal, *callbacks])

        if state is None:
            self.start_epoch, self.best, self.best_epoch = 1, None, None
            rundir.write_start_files(
                self.run_dir,
                cfg,
                {
                    "spec": self.network,
                    "summary": summary,
                    "input_shape": self.input_shape,
                    "classes": self.classes,
                },
                self.preprocessing,
            )
            rundir.reset_metrics(self.run_dir)
        else:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler"):
                self.scheduler.load_state_dict(state["scheduler"])
            self.callbacks.load_state_dicts(state.get("callbacks", {}))
            self.best, self.best_epoch = state.get("best_metric"), state.get("best_epoch")
            self.start_epoch = int(state["epoch"]) + 1
            rundir.truncate_metrics(self.run_dir, int(state["epoch"]))
            restore_rng(state["rng"])
        self.best_blob: bytes | None = None  # the best epoch's checkpoint, until it is written

    def early_stopped(self) -> bool:
        return any(cb.should_stop() for cb in self.callbacks.callbacks if isinstance(cb, EarlyStopping))

    def state(self, epoch: int, generator: torch.Generator) -> dict:
        """Everything needed to continue exactly after ``epoch``."""
        return {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": {**capture_rng(), "shuffle": generator.get_state()},
            "callbacks": to_plain(self.callbacks.state_dicts()),
            "best_metric": self.best,
            "best_epoch": self.best_epoch,
            "monitor": self.monitor,
            "config": self.cfg.to_dict(),
            "network": self.network,
            "input_shape": self.input_shape,
            "preprocessing": self.preprocessing,
            "classes": self.classes,
            "finetune": self.finetune,
        }

    def epoch(self, epoch: int) -> tuple[dict, bool]:
        """Train and validate one epoch; returns the metrics row and whether to stop."""
        started = time.perf_counter()
        cfg = self.cfg.train
        generator = shuffle_generator(self.cfg.seed, epoch)
        x, y = self.splits["train"]
        result = train_epoch(
            self.model,
            x,
            y,
            batch_size=cfg.batch_size,
            optimizer=self.optimizer,
            loss_fn=self.loss_fn,
            generator=generator,
            penalty=self.penalty,
            grad_clip=cfg.grad_clip,
            augment=self.augment,
            stop_poll=self.callbacks.should_stop if self.callbacks.batch_pollers else None,
        )
        if result.bad_batch is not None:
            self.diverged(epoch, f" (batch {result.bad_batch}): loss is {result.bad_value}")
        if result.stopped:
            return {}, True
        val_loss, val_acc, _ = evaluate_split(self.model, *self.splits["val"], self.loss_fn)
        # Every batch loss can be finite while the last step still blows the weights up: the
        # validation loss (or, with no validation split, the weights themselves) catches that.
        if val_loss is not None and not math.isfinite(val_loss):
            self.diverged(epoch, f": validation loss is {val_loss} (train loss {result.loss:.4g})")
        if val_loss is None and not weights_finite(self.model):
            self.diverged(epoch, f": the weights hold NaN or infinite values (train loss {result.loss:.4g})")
        lr = base_lr(self.optimizer)
        scheduler_step(self.scheduler, val_loss if val_loss is not None else result.loss)
        row = {
            "epoch": epoch,
            "train_loss": result.loss,
            "train_accuracy": result.accuracy,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "lr": lr,
            "seconds": round(time.perf_counter() - started, 4),
        }
        rundir.append_metrics(self.run_dir, row)
        self.callbacks.on_epoch_end(epoch, row)
        stop = self.callbacks.should_stop()
        self.checkpoint(epoch, row, generator, final=stop or epoch >= cfg.epochs)
        return row, stop

    def diverged(self, epoch: int, what: str) -> None:
        """Stop the run: say where it diverged and which checkpoint is still good."""
        last = self.run_dir / CHECKPOINT_DIR / LAST
        kept = (
            f"the last good checkpoint is kept ({last})"
            if last.is_file()
            else "no checkpoint had been written yet"
        )
        raise DivergedError(f"diverged at epoch {epoch}{what}", hint=f"{DIVERGED_HINT}; {kept}")

    def checkpoint(self, epoch: int, row: dict, generator: torch.Generator, *, final: bool) -> None:
        """Track the best epoch; write best/numbered/last checkpoints on checkpoint epochs and at the end."""
        value = row.get(self.monitor)
        improved = value is not None and _better(value, self.best, self.monitor)
        if improved:
            self.best, self.best_epoch = value, epoch
        due = epoch % self.cfg.train.checkpoint_every == 0
        if not (improved or due or final):
            return
        blob = checkpoint_bytes(self.state(epoch, generator))
        if improved:
            self.best_blob = blob
        if not (due or final):
            return
        folder = self.run_dir / CHECKPOINT_DIR
        if self.best_blob is not None:
            write_atomic(folder / BEST, self.best_blob)
            self.best_blob = None
            self.callbacks.on_checkpoint(folder / BEST, self.best_epoch)
        if due:
            numbered = folder / f"epoch-{epoch:04d}.ckpt"
            write_atomic(numbered, blob)
            prune_numbered(self.run_dir, self.cfg.train.keep_checkpoints)
            self.callbacks.on_checkpoint(numbered, epoch)
        write_atomic(folder / LAST, blob)
        self.callbacks.on_checkpoint(folder / LAST, epoch)

    def best_weights(self) -> tuple[dict | None, str]:
        """The best epoch's model weights (None means the final ones) and a note saying which."""
        best_path = self.run_dir / CHECKPOINT_DIR / BEST
        if self.best_epoch is None or not best_path.is_file():
            return None, "last"
        state = checkpoint_load(best_path, map_location=self.device)
        return state["model"], f"best (epoch {state['epoch']}, {self.monitor})"

    def finish(self, status: str, started: float, epochs_done: int) -> dict:
        """Test the best weights, write summary.json."""
        final_sha = weights_sha256(self.model)
        best_state, which = self.best_weights()
        model = self.model
        if best_state is not None:
            model.load_state_dict(best_state)
        train_loss, train_acc, _ = evaluate_split(model, *self.splits["train"], self.loss_fn)
        val_loss, val_acc, _ = evaluate_split(model, *self.splits["val"], self.loss_fn)
        test_loss, test_acc, test_pred = evaluate_split(model, *self.splits["test"], self.loss_fn)
        summary = {
            "status": status,
            "run_dir": str(self.run_dir),
            "epochs": epochs_done,
            "epochs_planned": self.cfg.train.epochs,
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "test_loss": test_loss,
            "test_accuracy": test_acc,
            "evaluated_weights": which,
            "best_epoch": self.best_epoch,
            "best_metric": self.best,
            "monitor": self.monitor,
            "weights_sha256": final_sha,
            "best_weights_sha256": weights_sha256(model),
            "train_seconds": round(
                sum(r.get("seconds") or 0.0 for r in rundir.read_metrics(self.run_dir)), 3
            ),
            "seconds": round(time.perf_counter() - started, 3),
            "device": str(self.device),
            "parameters": sum(p.numel() for p in model.parameters()),
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "frozen": self.frozen,
            "classes": self.classes,
            "init_from": self.finetune,
            "data_report": self.data_report,
            "warnings": self.warnings,
        }
        if test_pred is not None:
            summary.update(classification_report(self.splits["test"][1], test_pred, self.classes))
            summary["verdict"] = overfitting_verdict(train_acc, test_acc, val_acc)
        else:
            summary["verdict"] = "no test split: set data.split.test above 0 for an honest verdict"
        rundir.write_summary(self.run_dir, summary)
        return summary


def train_experiment(
    cfg: ExperimentConfig | None,
    run_dir: str | Path,
    *,
    resume: bool = False,
    device: str = "auto",
    callbacks: Sequence[Callback] = (),
    cache_dir: Path | None = None,
) -> dict:
    """Train one experiment into ``run_dir`` and return the summary (also written to summary.json).

    Args:
        cfg: the experiment; with ``resume`` it may be None (read from the run's config.yaml).
        run_dir: the run directory (created when new).
        resume: continue from the newest valid checkpoint of ``run_dir``.
        device: ``auto``, ``cpu`` or ``cuda``.
        callbacks: progress reporting, cancellation (``should_stop``), anything stateful.
        cache_dir: where decoded datasets are cached.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    warnings: list[str] = []
    state = None
    if resume:
        path, state, skipped = load_latest_valid(run_dir)
        for message in skipped:
            logger.warning(message)
        warnings += skipped
        logger.info("resuming %s from %s (epoch %s)", run_dir, path, state["epoch"])
        if cfg is None:
            cfg = rundir.read_config(run_dir)
    elif cfg is None:
        raise ConfigError(
            "no experiment config given", hint="pass a config, or resume=True with a run directory"
        )
    else:
        rundir.check_fresh(run_dir)
    run = _Run(cfg, run_dir, pick_device(device), warnings)
    run.setup(state, callbacks, cache_dir)
    run.callbacks.on_run_start(
        {
            "run_dir": str(run_dir),
            "epochs": cfg.train.epochs,
            "start_epoch": run.start_epoch,
            "resumed": state is not None,
            "classes": run.classes,
            "input_shape": run.input_shape,
            "parameters": sum(p.numel() for p in run.model.parameters()),
            "device": str(run.device),
            "init_from": run.finetune,
        }
    )
    status, done = "completed", run.start_epoch - 1
    if run.early_stopped():
        status = "early_stopped"  # resumed after early stopping had already fired
    else:
        for epoch in range(run.start_epoch, cfg.train.epochs + 1):
            try:
                row, stop = run.epoch(epoch)
            except DivergedError as exc:
                rundir.write_summary(
                    run_dir,
                    {"status": "diverged", "run_dir": str(run_dir), "error": exc.one_line(), "epochs": done},
                )
                raise
            if row:
                done = epoch
            if stop:
                status = "early_stopped" if run.early_stopped() else "cancelled"
                break
    summary = run.finish(status, started, done)
    run.callbacks.on_run_end(summary)
    return summary
