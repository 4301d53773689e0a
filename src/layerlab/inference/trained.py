"""A trained model loaded back from a run directory or a checkpoint, with what it needs to be used.

``resolve_checkpoint`` (which file of a run) lives in the engine (``train.checkpoint``): fine-tuning uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from layerlab.train import adapters
from layerlab.train.checkpoint import checkpoint_load, resolve_checkpoint
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
