"""Input corruption for denoising (``data.noise``): gaussian, masking and salt-and-pepper noise.

Training batches are corrupted with torch's global RNG (so a checkpoint's RNG state makes a resumed
run draw the same noise); the reconstruction report corrupts the test split with its own seeded
generator, leaving the global stream alone.
"""

from __future__ import annotations

import torch

from layerlab.data.config import NoiseConfig


def corrupt(x: torch.Tensor, cfg: NoiseConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """A corrupted copy of the batch ``x`` (``x`` itself is never written).

    Args:
        x: a batch of inputs (any shape; the first axis is the batch).
        cfg: the kind of noise, its size (``sigma`` or ``fraction``) and the optional ``clip``.
        generator: a CPU generator for the draws; None uses torch's global RNG.
    """
    if cfg.kind == "gaussian":
        noisy = x + _draw(torch.randn, x, generator) * cfg.sigma
    else:
        hit = _draw(torch.rand, x, generator) < cfg.fraction
        if cfg.kind == "masking":
            noisy = x.masked_fill(hit, 0.0)
        else:
            low, high = cfg.clip if cfg.clip is not None else (float(x.min()), float(x.max()))
            salt = _draw(torch.rand, x, generator) < 0.5
            noisy = torch.where(hit, torch.where(salt, x.new_tensor(high), x.new_tensor(low)), x)
    if cfg.clip is not None:
        noisy = noisy.clamp(cfg.clip[0], cfg.clip[1])
    return noisy


def _draw(sample, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``sample(x.shape)`` on ``x``'s device and dtype: drawn on the CPU when a generator is given."""
    if generator is None:
        return sample(x.shape, device=x.device, dtype=x.dtype)
    return sample(x.shape, generator=generator, dtype=x.dtype).to(x.device)


class Corruptor:
    """The ``augment`` callable of a denoising run: each training batch augmented (if ``augment``), then
    corrupted."""

    def __init__(self, cfg: NoiseConfig, augment=None):
        self.cfg, self.augment = cfg, augment

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.augment is not None:
            x = self.augment(x)
        return corrupt(x, self.cfg)
