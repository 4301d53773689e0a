"""A trained model loaded back from a run directory or a checkpoint, with what it needs to be used."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from layerlab.core.errors import CheckpointError
from layerlab.train import adapters
from layerlab.train.checkpoint import BEST, CHECKPOINT_DIR, LAST, checkpoint_load
from layerlab.train.device import pick_device


@dataclass
class TrainedModel:
    """A rebuilt network in eval mode plus the run's classes, preprocessing and config."""

    model: torch.nn.Module
    network: dict
    input_shape: list[int]
    classes: list[str]
    preprocessing: dict
    config: dict
    checkpoint: Path
    epoch: int


def resolve_checkpoint(run_or_checkpoint: str | Path, *, prefer: str = BEST) -> Path:
    """A checkpoint file from a run directory (``best.ckpt``, else ``last.ckpt``) or a checkpoint path.

    Args:
        run_or_checkpoint: a run directory or a ``.ckpt`` file.
        prefer: which checkpoint of a run directory to take first.
    """
    path = Path(run_or_checkpoint)
    if path.is_file():
        return path
    if path.is_dir():
        for name in (prefer, BEST, LAST):
            candidate = path / CHECKPOINT_DIR / name
            if candidate.is_file():
                return candidate
        raise CheckpointError(
            f"'{path}' holds no checkpoint (looked for {CHECKPOINT_DIR}/{BEST} and {LAST})",
            hint="pass a run directory with checkpoints or a .ckpt file",
        )
    raise CheckpointError(f"no run directory or checkpoint at '{path}'", hint="check the path")


def load_trained(run_or_checkpoint: str | Path, *, device: str = "cpu") -> TrainedModel:
    """Rebuild a run's model (its best checkpoint, or the checkpoint given) in eval mode.

    Args:
        run_or_checkpoint: a run directory or a checkpoint file.
        device: ``auto``, ``cpu`` or ``cuda``.
    """
    path = resolve_checkpoint(run_or_checkpoint)
    target = pick_device(device)
    state = checkpoint_load(path, map_location=target)
    model = adapters.network_from_dict(state["network"])
    model.load_state_dict(state["model"])
    model.to(target).eval()
    return TrainedModel(
        model=model,
        network=state["network"],
        input_shape=list(state.get("input_shape") or []),
        classes=list(state["classes"]),
        preprocessing=state.get("preprocessing") or {},
        config=state.get("config") or {},
        checkpoint=path,
        epoch=int(state["epoch"]),
    )
