"""A model's weights as safetensors bytes, and their sha256 (the run's fingerprint)."""

from __future__ import annotations

import hashlib

import torch
from safetensors.torch import save


def weights_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as standalone, contiguous CPU tensors (safetensors refuses shared storage)."""
    return {name: t.detach().to("cpu").contiguous().clone() for name, t in model.state_dict().items()}


def weights_bytes(model: torch.nn.Module) -> bytes:
    """The model's state dict serialized with ``safetensors.torch.save``."""
    return save(weights_tensors(model))


def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 (hex) of the model's weights serialized with safetensors."""
    return hashlib.sha256(weights_bytes(model)).hexdigest()


def weights_finite(model: torch.nn.Module) -> bool:
    """True when no parameter holds NaN or infinity (one device sync)."""
    checks = [torch.isfinite(p).all() for p in model.parameters()]
    return bool(torch.stack(checks).all()) if checks else True
