"""Where a resumed run starts: the newest valid checkpoint of its directory and its recorded config."""

from __future__ import annotations

import logging
from pathlib import Path

from layerlab.core import runlayout
from layerlab.core.errors import CheckpointError
from layerlab.train import rundir
from layerlab.train.checkpoint import CHECKPOINT_DIR, find_latest_valid, remove_partial_writes
from layerlab.train.config import ExperimentConfig

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
