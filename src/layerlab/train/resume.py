"""Where a resumed run starts (the newest valid checkpoint of its directory and its recorded config), and
what a checkpoint holds of a trainer: ``trainer_state`` saves it, ``load_trainer_state`` puts it back."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from layerlab.core import runlayout
from layerlab.core.errors import CheckpointError
from layerlab.train import rundir
from layerlab.train.checkpoint import CHECKPOINT_DIR, find_latest_valid, remove_partial_writes, to_plain
from layerlab.train.config import ExperimentConfig
from layerlab.train.rng import capture_rng

logger = logging.getLogger("layerlab.train")


def resume_state(run_dir: Path, cfg: ExperimentConfig | None, warnings: list[str], *, writer: bool = True):
    """The checkpoint to resume from (None: start over) and the config, for ``resume=True``.

    A run killed before its first complete checkpoint (or whose every checkpoint is corrupt) starts
    over from epoch 1 in its directory, with its recorded config; temp files of a write cut short by
    the kill are deleted.
    """
    if not run_dir.is_dir():
        raise CheckpointError(
            f"cannot resume '{run_dir}': the directory does not exist",
            hint="pass the directory of an earlier run",
        )
    for name in remove_partial_writes(run_dir) if writer else ():
        logger.info("removed %s, a file write the kill cut short", name)
    path, state, skipped = find_latest_valid(run_dir)
    for message in skipped:
        logger.warning(message)
    warnings += skipped
    has_config = (run_dir / rundir.CONFIG).is_file()
    if cfg is None:
        if not has_config:
            detail = "every checkpoint is corrupt" if skipped else "it holds no checkpoint"
            raise CheckpointError(
                f"cannot resume '{run_dir}': {detail} and no {rundir.CONFIG} (not a layerlab run directory)",
                hint="start a new run with `layerlab train CONFIG --run-dir DIR`",
            )
        cfg = rundir.read_config(run_dir)
    if state is None:
        for stale in (run_dir / CHECKPOINT_DIR).glob(f"*{runlayout.CHECKPOINT_SUFFIX}") if writer else ():
            stale.unlink(missing_ok=True)  # none of them loads
        message = (
            f"no complete checkpoint in '{run_dir}' (killed before its first one?): "
            "starting the run over from epoch 1 with its recorded config"
        )
        logger.warning(message)
        warnings.append(message)
    else:
        logger.info("resuming %s from %s (epoch %s)", run_dir, path, state["epoch"])
    return state, cfg


def checkpoint_world_size(state: dict) -> int:
    """The world size a checkpoint was trained with (its config's train.distributed)."""
    dist = ((state.get("config") or {}).get("train") or {}).get("distributed") or {}
    return int(dist.get("nproc_per_node", 1)) * int(dist.get("nnodes", 1))


def trainer_state(trainer, epoch: int, generator: torch.Generator) -> dict:
    """Everything a checkpoint needs for ``trainer`` to continue exactly after ``epoch``."""
    subspace, curriculum = trainer.subspace, trainer.curriculum
    return {
        "epoch": epoch,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        "rng": {**capture_rng(), "shuffle": generator.get_state()},
        "callbacks": to_plain(trainer.callbacks.state_dicts()),
        "best_metric": trainer.best,
        "best_epoch": trainer.best_epoch,
        "monitor": trainer.monitor,
        "config": trainer.cfg.to_dict(),
        "network": trainer.network,
        "input_shape": trainer.input_shape,
        "preprocessing": trainer.preprocessing,
        "classes": trainer.classes,
        "finetune": trainer.finetune,
        "grad_scaler": trainer.precision.state_dict(),  # 16-mixed: the loss scale, for exact resume
        "subspace": subspace.checkpoint_state() if subspace is not None else None,
        "curriculum": curriculum.state_dict() if curriculum is not None else None,
    }


def load_trainer_state(trainer, state: dict) -> None:
    """Put a checkpoint's model, optimizer, scheduler, callback, loss-scale and best-so-far states back
    into ``trainer`` (the RNG and the run directory's files are the caller's)."""
    trainer.model.load_state_dict(state["model"])
    if trainer.subspace is not None:  # theta0 and theta_d (P is redrawn from its seed)
        trainer.subspace.load_checkpoint_state(state.get("subspace"))
    trainer.optimizer.load_state_dict(state["optimizer"])
    if trainer.scheduler is not None and state.get("scheduler"):
        trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.callbacks.load_state_dicts(state.get("callbacks", {}))
    trainer.precision.load_state_dict(state.get("grad_scaler"))
    trainer.best, trainer.best_epoch = state.get("best_metric"), state.get("best_epoch")
