"""Which torch device a run uses."""

from __future__ import annotations

import torch

from layerlab.core.errors import ConfigError


def pick_device(device: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; asking for CUDA without one is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda was asked for but no CUDA device is available", hint="use --device cpu or auto"
        )
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"unknown device '{device}'", hint="use auto, cpu or cuda")
    return torch.device(device)
