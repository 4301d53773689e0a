"""Small hand-made trained models for the inspect tests (no training: a spec, weights set by hand)."""

from __future__ import annotations

from pathlib import Path

import torch

from layerlab.inference.trained import TrainedModel
from layerlab.train import adapters


def conv_spec(channels: int = 1, side: int = 8, classes: int = 3) -> dict:
    return {
        "input": [channels, side, side],
        "classes": classes,
        "layers": [
            {"kind": "conv2d", "out": 4, "kernel": 3, "padding": 1, "name": "conv1"},
            {"kind": "relu", "name": "act1"},
            {"kind": "maxpool2d", "kernel": 2, "name": "pool1"},
            {"kind": "conv2d", "out": 5, "kernel": 3, "padding": 1, "name": "conv2"},
            {"kind": "relu", "name": "act2"},
            {"kind": "flatten", "name": "flat"},
            {"kind": "linear", "out": "classes", "name": "out"},
        ],
    }


def make_trained(tmp: Path, spec: dict, *, seed: int = 0, name: str = "model.ckpt") -> TrainedModel:
    """A TrainedModel of ``spec`` with seeded random weights; its checkpoint file holds the weights."""
    torch.manual_seed(seed)
    model = adapters.network_from_dict(spec).eval()
    channels = spec["input"][0]
    checkpoint = Path(tmp) / name
    torch.save(model.state_dict(), checkpoint)
    return TrainedModel(
        model=model,
        network=spec,
        input_shape=list(spec["input"]),
        classes=[str(i) for i in range(spec["classes"])],
        preprocessing={
            "kind": "image",
            "size": spec["input"][1:],
            "channels": channels,
            "normalize": "standard",
            "mean": [0.5] * channels,
            "std": [0.25] * channels,
            "classes": [str(i) for i in range(spec["classes"])],
        },
        config={},
        checkpoint=checkpoint,
        epoch=1,
    )


def examples(trained: TrainedModel, n: int = 32, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *trained.input_shape), generator=generator)
    return x, torch.randint(0, len(trained.classes), (n,), generator=generator)
