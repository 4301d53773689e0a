"""The ``Trainer``: one run from config to summary, with checkpoints and exact resume.

``train_experiment(...)`` is the one-call entry point; ``Trainer`` exposes its phases
(``prepare_data``, ``build``, ``restore``, ``fit``, ``finish``) and its state (model, optimizer, data
splits, run directory, strategy, epoch) to callbacks and to research code.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from layerlab.core import runlayout
from layerlab.core.errors import ConfigError, DataError, DivergedError
from layerlab.train import adapters, rundir
from layerlab.train.callbacks import Callback, CallbackList, EarlyStopping, improves, monitor_and_stopper
from layerlab.train.checkpoint import (
    BEST,
    CHECKPOINT_DIR,
    LAST,
    checkpoint_bytes,
    checkpoint_load,
    prune_numbered,
    to_plain,
    write_atomic,
)
from layerlab.train.config import ExperimentConfig
from layerlab.train.curriculum import Curriculum, data_positions
from layerlab.train.device import pick_device
from layerlab.train.distributed import SingleProcess, in_torchrun, make_strategy
from layerlab.train.finetune import frozen_modules, init_from, param_groups
from layerlab.train.loop import diverged_value, loss_text, train_epoch, train_epoch_shard
from layerlab.train.losses import make_loss, make_penalty
from layerlab.train.optim import base_lr, make_optimizer, make_scheduler, scheduler_step
from layerlab.train.precision import CompiledOrEager, Precision, check_precision, resolve_channels_last
from layerlab.train.resume import checkpoint_world_size, load_trainer_state, resume_state, trainer_state
from layerlab.train.rng import restore_rng, seed_everything, shuffle_generator
from layerlab.train.subspace import make_subspace
from layerlab.train.summary import data_report_warnings, run_summary
from layerlab.train.tasks import check_experiment, code_penalty, combine_penalties, task_of
from layerlab.train.testpredictions import predictions_write
from layerlab.train.weights import weights_finite, weights_sha256

logger = logging.getLogger("layerlab.train")

DIVERGED_HINT = "lower train.lr, e.g. --set train.lr=0.0001, or add grad_clip"


class Trainer:
    """One run of an experiment: its phases, and the state callbacks and research code read.

    ``run()`` calls the phases in order; each can also be called on its own (a research tool may
    ``prepare_data()`` and ``build()`` only, then use ``model`` and ``splits``):

    1. ``prepare_data()``: seed, decode/cache the data, ``classes``, ``input_shape``, ``splits``.
    2. ``build()``: the network (or the checkpoint's), ``model``, ``optimizer``, ``scheduler``,
       ``loss_fn``, the callbacks (early stopping first, then the caller's).
    3. ``restore()``: a new run writes its start files; a resumed one loads the checkpoint's model,
       optimizer, scheduler, callback and RNG states (exact resume).
    4. ``fit()``: ``on_run_start``, then epochs until done, early stopped or cancelled; the status.
    5. ``finish(status)``: evaluate the best weights, write summary.json, ``on_run_end``; the summary.

    Only the writer (``strategy.is_writer``: rank 0) writes files and runs the callbacks that do not
    set ``all_ranks``; every write is preceded by ``on_before_write``.

    Args:
        cfg: the experiment.
        run_dir: the run directory.
        device: ``auto``, ``cpu`` or ``cuda`` (ignored when ``strategy`` is given).
        callbacks: the caller's callbacks (progress, the server's recorder, research hooks).
        cache_dir: where decoded datasets are cached.
        resume_state: the checkpoint dict to continue from (None: a new run).
        strategy: rank, world size, device and who writes (default: ``SingleProcess``).
        warnings: a list collecting the run's warnings (also in summary.json).

    Attributes (set by the phases): ``cfg``, ``run_dir``, ``strategy``, ``device``, ``callbacks``
    (a ``CallbackList``), ``epoch`` (the epoch training or last trained; ``start_epoch - 1`` before
    ``fit``), ``start_epoch``, ``classes``, ``input_shape``, ``preprocessing``, ``data_report``,
    ``splits`` (``{"train", "val", "test"}: (x, y)`` on the device), ``network`` (the spec dict),
    ``model``, ``optimizer``, ``scheduler``, ``loss_fn``, ``penalty``, ``augment``, ``frozen``,
    ``finetune``, ``monitor``, ``best``, ``best_epoch``, ``status`` and ``summary`` (after ``finish``);
    ``subspace`` (a ``train.subspace.SubspaceNetwork`` the steps call, or None); ``task`` (a
    ``train.tasks.Task``: classification, regression or reconstruction; a reconstruction's split targets
    are its inputs).
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        run_dir: str | Path,
        *,
        device: str = "auto",
        callbacks: Sequence[Callback] = (),
        cache_dir: Path | None = None,
        resume_state: dict | None = None,
        strategy=None,
        warnings: list[str] | None = None,
    ):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.strategy = strategy if strategy is not None else SingleProcess(pick_device(device))
        self.device = self.strategy.device
        self.user_callbacks = list(callbacks)
        self.cache_dir, self.resume_state = cache_dir, resume_state
        self.warnings = warnings if warnings is not None else []
        self.callbacks = CallbackList([])
        self.epoch, self.start_epoch = 0, 1
        self.status: str | None = None
        self.summary: dict | None = None
        self.curriculum: Curriculum | None = None  # train.curriculum, set by ``restore``
        self.started = time.perf_counter()

    @property
    def is_writer(self) -> bool:
        """Whether this process writes the run's files (rank 0; always in one process)."""
        return self.strategy.is_writer

    @property
    def resumed(self) -> bool:
        return self.resume_state is not None

    def warn(self, message: str) -> None:
        logger.warning(message)
        self.warnings.append(message)

    def before_write(self, what: str) -> bool:
        """``on_before_write(what)`` on the writer; whether this process writes (False on other ranks)."""
        if not self.is_writer:
            return False
        self.callbacks.on_before_write(self, what)
        return True

    def run(self) -> dict:
        """Every phase in order; the summary."""
        self.prepare_data()
        self.build()
        self.restore()
        return self.finish(self.fit())

    def prepare_data(self) -> None:
        """Seed, then decode (or read from the cache) the data: classes, input shape, the splits."""
        cfg, state = self.cfg, self.resume_state
        check_precision(cfg.train.precision, self.device)  # before decoding: 16-mixed on a CPU is refused
        if cfg.train.num_threads:
            torch.set_num_threads(cfg.train.num_threads)
        seed_everything(cfg.seed)
        self.task = task_of(cfg.train)
        check_experiment(cfg)
        if state is None and self.task.classifies:  # a shape error now, not after decoding the whole data set
            adapters.check_network(cfg.model, cfg.data)
        group = self.strategy.distributed
        if group and not self.is_writer:
            self.strategy.barrier()  # rank 0 decodes first and fills the cache the others then read
        data = adapters.prepare_data(cfg.data, seed=cfg.seed, cache_dir=self.cache_dir)
        if group and self.is_writer:
            self.strategy.barrier()
        self.classes = [str(c) for c in data.classes]
        self.input_shape = [int(s) for s in data.input_shape]
        self.preprocessing = adapters.preprocessing_to_dict(data.preprocessing)
        report = getattr(data, "report", None)
        self.data_report = to_plain(report.to_dict() if hasattr(report, "to_dict") else report)
        for message in data_report_warnings(self.data_report):
            self.warn(message)
        splits = {}
        for split in ("train", "val", "test"):
            x, y = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
            x = adapters.inputs_on(x, self.device)
            y = self.task.targets(split, x, torch.as_tensor(y), self.classes)  # labels, values or x itself
            splits[split] = (x, y.to(self.device) if isinstance(y, torch.Tensor) else y)
        self.task.check_targets(splits["train"][1])
        self.splits = splits
        # where each training example is in the source, and how many it has (curriculum score arrays)
        self.train_index, self.source_examples = data_positions(data)
        if len(splits["train"][0]) == 0:
            raise DataError(
                "the training split is empty",
                hint="use more data or smaller val/test fractions",
                where="data.split",
            )

    def build(self) -> None:
        """The model (new, or the checkpoint's network), optimizer, scheduler, loss and callbacks."""
        cfg, state, splits = self.cfg, self.resume_state, self.splits
        num_classes = self.task.output_size(self.classes, self.input_shape, splits["train"][1])
        torch.manual_seed(cfg.seed)  # weights do not depend on how much RNG the data loader used
        if state is None:
            self.network, summary, self.model = adapters.network_from_config(
                cfg.model, input_shape=self.input_shape, num_classes=num_classes
            )
            init = cfg.model.init_from
            self.finetune = init_from(self.model, init, cfg.model.init_skip) if init else None
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
        self.network_summary = summary  # shapes and parameters per layer (network.json); None on resume
        groups, self.frozen = param_groups(self.model, cfg.model, (self.finetune or {}).get("loaded", []))
        self.frozen_modules = frozen_modules(self.model, cfg.model.freeze)
        self.model.to(self.device)
        channels_last = resolve_channels_last(cfg.train.channels_last, self.model, self.device)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.precision = Precision(cfg.train.precision, self.device, channels_last=channels_last)
        self.subspace = make_subspace(cfg, self.model)  # train.subspace: theta0 + P theta_d, theta_d trains
        if self.subspace is not None:
            groups, self.frozen = [{"params": [self.subspace.theta_d], "lr_factor": 1.0}], []
        self.optimizer = make_optimizer(cfg.train, groups)
        self.scheduler = make_scheduler(cfg.train, self.optimizer)
        if summary is not None:
            self.task.check_output(summary.get("output_shape"), self.input_shape, splits["train"][1])
        task_loss = make_loss if self.task.classifies else self.task.make_loss
        self.loss_fn = task_loss(cfg.train, num_classes)
        self.penalty = combine_penalties(
            make_penalty(cfg.train, self.model), code_penalty(self.model, cfg.train.code_l1)
        )
        self.augment = adapters.with_noise(adapters.make_augmenter(cfg.data.augment), cfg.data.noise)

        self.monitor, internal = monitor_and_stopper(cfg.train.early_stopping, len(splits["val"][0]) > 0)
        # The same order as before state keys (early stopping first), so older checkpoints still resume.
        self.callbacks = CallbackList(
            cb for cb in [*internal, *self.user_callbacks] if self.is_writer or cb.all_ranks
        )

    def restore(self) -> None:
        """A new run writes config.yaml, network.json, preprocessing.json; a resumed run loads its
        checkpoint's states (model, optimizer, scheduler, callbacks, RNG) to continue exactly."""
        cfg, state = self.cfg, self.resume_state
        if cfg.train.curriculum is not None:  # before any file: bad scores leave nothing half-written
            self.curriculum = Curriculum.for_trainer(self)  # computed once, then kept in every checkpoint
        if state is None:
            self.start_epoch, self.best, self.best_epoch = 1, None, None
            if self.before_write("start"):
                rundir.write_start_files(
                    self.run_dir,
                    cfg,
                    {
                        "spec": self.network,
                        "summary": self.network_summary,
                        "input_shape": self.input_shape,
                        "classes": self.classes,
                    },
                    self.preprocessing,
                )
                rundir.reset_metrics(self.run_dir)
        else:
            load_trainer_state(self, state)
            self.start_epoch = int(state["epoch"]) + 1
            if self.before_write("metrics"):
                rundir.truncate_metrics(self.run_dir, int(state["epoch"]))
                rundir.write_config(self.run_dir, cfg)  # what trains from here (e.g. --set train.epochs=N)
            restore_rng(state["rng"])
        self.epoch = self.start_epoch - 1
        self.best_blob: bytes | None = None  # the best epoch's checkpoint, until it is written
        # what the training steps call: DDP over ``model`` in a group (``model`` stays the plain
        # module: its state_dict, checkpoints and evaluation are those of one process)
        self.strategy.check(cfg.train.batch_size)
        self.train_model = self.strategy.wrap(self.model if self.subspace is None else self.subspace)
        if cfg.train.compile:  # the steps only; ``model`` (state_dict, evaluation) stays eager
            self.train_model = CompiledOrEager(self.train_model, self.warn)

    def early_stopped(self) -> bool:
        return any(cb.should_stop(self) for cb in self.callbacks.callbacks if isinstance(cb, EarlyStopping))

    def state(self, epoch: int, generator: torch.Generator) -> dict:
        """Everything needed to continue exactly after ``epoch``."""
        return trainer_state(self, epoch, generator)

    def fit(self) -> str:
        """``on_run_start``, then train from ``start_epoch`` to ``train.epochs``; the status
        (``completed``, ``early_stopped`` or ``cancelled``). A diverged run writes its summary and raises
        ``DivergedError``."""
        cfg, run_dir = self.cfg, self.run_dir
        info = {
            "run_dir": str(run_dir),
            "epochs": cfg.train.epochs,
            "start_epoch": self.start_epoch,
            "resumed": self.resumed,
            "classes": self.classes,
            "input_shape": self.input_shape,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "device": str(self.device),
            "init_from": self.finetune,
        }
        self.callbacks.on_run_start(self, info)
        status, self.epochs_done = "completed", self.start_epoch - 1
        if self.early_stopped():
            return "early_stopped"  # resumed after early stopping had already fired
        for epoch in range(self.start_epoch, cfg.train.epochs + 1):
            try:
                row, stop = self.fit_epoch(epoch)
            except DivergedError as exc:
                if self.before_write("summary"):
                    rundir.write_summary(
                        run_dir,
                        {
                            "status": "diverged",
                            "run_dir": str(run_dir),
                            "error": exc.one_line(),
                            "epochs": self.epochs_done,
                        },
                    )
                raise
            if row:
                self.epochs_done = epoch
            if stop:
                status = "early_stopped" if self.early_stopped() else "cancelled"
                break
        return status

    def _poll_stop(self) -> bool:
        return self.callbacks.should_stop(self)

    def fit_epoch(self, epoch: int) -> tuple[dict, bool]:
        """Train and validate one epoch; returns the metrics row and whether to stop."""
        started = time.perf_counter()
        self.epoch = epoch
        cfg = self.cfg.train
        generator = shuffle_generator(self.cfg.seed, epoch)
        x, y = self.splits["train"]
        if self.strategy.distributed:
            return self._fit_epoch_group(epoch, started, generator)
        result = train_epoch(
            self.train_model,
            x,
            y,
            batch_size=cfg.batch_size,
            optimizer=self.optimizer,
            loss_fn=self.loss_fn,
            generator=generator,
            penalty=self.penalty,
            grad_clip=cfg.grad_clip,
            augment=self.augment,
            stop_poll=self._poll_stop if self.callbacks.pollers else None,
            frozen=self.frozen_modules,
            precision=self.precision,
            subset=self.curriculum.subset(epoch) if self.curriculum is not None else None,
        )
        if result.bad_batch is not None:
            self.diverged(epoch, f" (batch {result.bad_batch}): loss is {loss_text(result.bad_value)}")
        if result.stopped:
            return {}, True
        return self._close_epoch(epoch, started, generator, result.loss, result.accuracy)

    def _fit_epoch_group(self, epoch: int, started: float, generator: torch.Generator) -> tuple[dict, bool]:
        """``fit_epoch`` of one rank of a group: this rank's shard of every global batch, metrics summed
        over the ranks, rank 0's validation numbers and one stop decision for all (a rank that stopped
        alone would leave the others waiting in the next all-reduce). A cancel takes effect at the end
        of the epoch."""
        cfg, strategy = self.cfg.train, self.strategy
        strategy.epoch_seed(self.cfg.seed, epoch)
        x, y = self.splits["train"]
        result = train_epoch_shard(
            self.train_model,
            x,
            y,
            batch_size=cfg.batch_size,
            optimizer=self.optimizer,
            loss_fn=self.loss_fn,
            generator=generator,
            rank=strategy.rank,
            world_size=strategy.world_size,
            penalty=self.penalty,
            grad_clip=cfg.grad_clip,
            augment=self.augment,
            frozen=self.frozen_modules,
            precision=self.precision,
            subset=self.curriculum.subset(epoch) if self.curriculum is not None else None,
        )
        bad = result.bad_batch is not None
        loss_sum, correct, examples, bad_ranks = strategy.all_sum(
            [0.0 if bad else result.loss * result.examples, result.correct, result.examples, float(bad)]
        )
        if bad_ranks:
            value = result.bad_value if bad else float("nan")
            self.diverged(epoch, f": a training loss is {loss_text(value)} (on {int(bad_ranks)} rank(s))")
        return self._close_epoch(epoch, started, generator, loss_sum / examples, correct / examples)

    def _close_epoch(
        self, epoch: int, started: float, generator: torch.Generator, train_loss: float, train_acc: float
    ) -> tuple[dict, bool]:
        """What follows the training pass of an epoch, on every rank alike: validation, the divergence
        checks, the schedule's step, the metrics row, callbacks, one stop decision, the checkpoint."""
        strategy = self.strategy
        if self.subspace is not None:  # theta0 + P theta_d into the network: validation, checkpoints
            self.subspace.materialize()
        val_loss, val_acc, val_errors = self.task.evaluate(
            self.model, *self.splits["val"], self.loss_fn, precision=self.precision
        )
        val_loss, val_acc = strategy.broadcast((val_loss, val_acc))  # every rank steps the same schedule
        # Every batch loss can be finite while the last step still blows the weights up: the
        # validation loss (or, with no validation split, the weights themselves) catches that.
        if val_loss is not None and diverged_value(val_loss):
            self.diverged(epoch, f": validation loss is {loss_text(val_loss)} (train loss {train_loss:.4g})")
        if not weights_finite(self.model):
            self.diverged(epoch, f": the weights hold NaN or infinite values (train loss {train_loss:.4g})")
        lr = base_lr(self.optimizer)
        scheduler_step(self.scheduler, val_loss if val_loss is not None else train_loss)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_acc if self.task.classifies else None,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            **({} if self.task.classifies else {f"val_{k}": v for k, v in (val_errors or {}).items()}),
            "lr": lr,
            "seconds": round(time.perf_counter() - started, 4),
        }
        if self.before_write("metrics"):
            rundir.append_metrics(self.run_dir, row)
        self.callbacks.on_epoch_end(self, epoch, row)
        stop = strategy.any(self.callbacks.should_stop(self))
        self.checkpoint(epoch, row, generator, final=stop or epoch >= self.cfg.train.epochs)
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
        improved = value is not None and improves(value, self.best, self.monitor)
        if improved:
            self.best, self.best_epoch = value, epoch
        due = epoch % self.cfg.train.checkpoint_every == 0
        if not (improved or due or final) or not self.is_writer:
            return
        blob = checkpoint_bytes(self.state(epoch, generator))
        if improved:
            self.best_blob = blob
        if not (due or final):
            return
        folder = self.run_dir / CHECKPOINT_DIR
        self.before_write("checkpoint")
        if self.best_blob is not None:
            write_atomic(folder / BEST, self.best_blob)
            self.best_blob = None
            self.callbacks.on_checkpoint(self, folder / BEST, self.best_epoch, runlayout.KIND_BEST)
        if due:
            numbered = folder / runlayout.numbered_name(epoch)
            write_atomic(numbered, blob)
            prune_numbered(self.run_dir, self.cfg.train.keep_checkpoints)
            self.callbacks.on_checkpoint(self, numbered, epoch, runlayout.KIND_NUMBERED)
        write_atomic(folder / LAST, blob)
        self.callbacks.on_checkpoint(self, folder / LAST, epoch, runlayout.KIND_LAST)

    def best_weights(self) -> tuple[dict | None, str]:
        """The best epoch's model weights (None means the final ones) and a note saying which."""
        best_path = self.run_dir / CHECKPOINT_DIR / BEST
        if self.best_epoch is None or not best_path.is_file():
            return None, "last"
        state = checkpoint_load(best_path, map_location=self.device)
        return state["model"], f"best (epoch {state['epoch']}, {self.monitor})"

    def finish(self, status: str) -> dict:
        """Test the best weights, write summary.json (and the test predictions), ``on_run_end``."""
        self.status = status
        final_sha = weights_sha256(self.model)
        ranks_sha = self.strategy.gather(final_sha)  # every rank, once (the last collective of a run)
        if not self.is_writer:  # the writer evaluates, writes and reports; the others are done
            self.summary = {"status": status, "rank": self.strategy.rank, "weights_sha256": final_sha}
            self.callbacks.on_run_end(self, self.summary)
            return self.summary
        best_state, which = self.best_weights()
        model = self.model
        if best_state is not None:
            model.load_state_dict(best_state)
        summary, test_pred = run_summary(
            self, model, status=status, which=which, final_sha=final_sha, ranks_sha=ranks_sha
        )
        # Per example, so a confusion-matrix cell can show its test images (the dashboard's gallery).
        if self.task.classifies and test_pred is not None and self.before_write("predictions"):
            predictions_write(self.run_dir, self.splits["test"][1], test_pred)
        summary = rundir.finite_only(summary)  # JSON, the store and callbacks never see NaN or infinity
        if self.before_write("summary"):
            rundir.write_summary(self.run_dir, summary)
        self.summary = summary
        self.callbacks.on_run_end(self, summary)
        return summary


def train_experiment(
    cfg: ExperimentConfig | None,
    run_dir: str | Path,
    *,
    resume: bool = False,
    device: str = "auto",
    callbacks: Sequence[Callback] = (),
    cache_dir: Path | None = None,
    strategy=None,
) -> dict:
    """Train one experiment into ``run_dir`` and return the summary (also written to summary.json).

    The one-call entry point: resolves ``resume`` (the newest valid checkpoint and the recorded
    config), then runs a ``Trainer`` through all its phases.

    Args:
        cfg: the experiment; with ``resume`` it may be None (read from the run's config.yaml).
        run_dir: the run directory (created when new).
        resume: continue from the newest valid checkpoint of ``run_dir``.
        device: ``auto``, ``cpu`` or ``cuda``.
        callbacks: progress reporting, cancellation (``should_stop``), anything stateful.
        cache_dir: where decoded datasets are cached.
        strategy: rank, world size, device, who writes (default: one process on ``device``).
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    # the given strategy's writer; else rank 0 of a torchrun group, or one process
    in_group_rank = in_torchrun() and int(os.environ["RANK"]) != 0
    writer = strategy.is_writer if strategy is not None else not in_group_rank
    warnings: list[str] = []
    state = None
    if resume:
        state, cfg = resume_state(run_dir, cfg, warnings, writer=writer)
    elif cfg is None:
        raise ConfigError(
            "no experiment config given", hint="pass a config, or resume=True with a run directory"
        )
    elif writer:
        rundir.check_fresh(run_dir)
    if strategy is None:  # DataParallel inside a torchrun group, else one process
        dist = cfg.train.distributed
        strategy = make_strategy(
            pick_device(device), backend=dist.backend, sync_batchnorm=cfg.train.sync_batchnorm
        )
        if state is not None and strategy.world_size != checkpoint_world_size(state):
            message = (
                f"resuming a run of {checkpoint_world_size(state)} process(es) with {strategy.world_size}: it "
                "continues, but not exactly as the uninterrupted run would (that needs the same world size)"
            )
            logger.warning(message)
            warnings.append(message)
    trainer = Trainer(
        cfg,
        run_dir,
        callbacks=callbacks,
        cache_dir=cache_dir,
        resume_state=state,
        strategy=strategy,
        warnings=warnings,
    )
    trainer.started = started
    try:
        return trainer.run()
    finally:
        strategy.close()
