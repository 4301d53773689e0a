"""On-the-fly augmentation of training batches as batched tensor ops, drawn from torch's global RNG.

Using the global RNG (never a private generator) means the trainer's checkpoint of torch's RNG
state makes a resumed run draw exactly the same augmentations. The trainer calls the
augmenter on training batches only, so validation and test data are never touched.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from layerlab.data.config import AugmentConfig


class Augmenter:
    """Random shifts, crops, flips, rotations, brightness and noise for a batch.

    Images ``(N, C, H, W)`` get every configured transform; vectors ``(N, F)`` get noise only.
    Geometric transforms (shift, crop, rotate) are one ``affine_grid`` + ``grid_sample`` call
    with zero padding (zero is the training mean after standard normalization).
    """

    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg
        self.training = True

    def train(self, mode: bool = True) -> Augmenter:
        """Turn augmentation on (or off with ``mode=False``), like ``nn.Module.train``."""
        self.training = mode
        return self

    def eval(self) -> Augmenter:
        """Turn augmentation off: batches pass through untouched (validation, test, prediction)."""
        return self.train(False)

    @property
    def enabled(self) -> bool:
        """Whether any transform is configured (the trainer may skip the call otherwise)."""
        return self.cfg.enabled

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """An augmented copy of the batch ``x`` (same shape and dtype)."""
        cfg = self.cfg
        if not (self.training and cfg.enabled) or x.numel() == 0:
            return x
        if x.dim() == 4:
            x = self._geometry(x)
            if cfg.brightness:
                factor = 1.0 + (torch.rand(x.shape[0], 1, 1, 1, device=x.device) * 2 - 1) * cfg.brightness
                x = x * factor.to(x.dtype)
        if cfg.noise:
            x = x + torch.randn(x.shape, device=x.device, dtype=x.dtype) * cfg.noise
        return x

    def _geometry(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        n, _, height, width = x.shape
        if 2 * cfg.crop >= min(height, width) or cfg.shift >= min(height, width):
            from layerlab.core.errors import ConfigError

            raise ConfigError(
                f"crop {cfg.crop} / shift {cfg.shift} leave nothing of {height}x{width} images",
                hint=f"keep 2 * crop and shift below {min(height, width)}",
                where="data.augment",
            )
        if cfg.hflip:
            flip = torch.rand(n, device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if cfg.vflip:
            flip = torch.rand(n, device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-2), x)
        reach = cfg.shift + cfg.crop
        if not (reach or cfg.rotate):
            return x
        # pixel offsets: shift moves the picture, crop moves a window cut `crop` pixels in from each side
        dx = torch.zeros(n, device=x.device)
        dy = torch.zeros(n, device=x.device)
        if reach:
            dx = torch.randint(-reach, reach + 1, (n,), device=x.device).float()
            dy = torch.randint(-reach, reach + 1, (n,), device=x.device).float()
        angle = torch.zeros(n, device=x.device)
        if cfg.rotate:
            angle = (torch.rand(n, device=x.device) * 2 - 1) * math.radians(cfg.rotate)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # affine_grid maps output to input coordinates in [-1, 1]; a shift of d pixels is 2d/size
        theta = torch.stack(
            [
                torch.stack([cos, -sin * height / width, -2 * dx / width], dim=1),
                torch.stack([sin * width / height, cos, -2 * dy / height], dim=1),
            ],
            dim=1,
        ).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        mode = "bilinear" if cfg.rotate else "nearest"  # whole-pixel shifts stay exact
        x = F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
        if cfg.crop:
            border = torch.zeros(height, width, device=x.device, dtype=x.dtype)
            border[cfg.crop : height - cfg.crop, cfg.crop : width - cfg.crop] = 1
            x = x * border
        return x
