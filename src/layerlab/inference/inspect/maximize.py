"""Activation maximization with the regularizers of Yosinski et al. 2015 ("Understanding Neural Networks
Through Deep Visualization"): gradient ascent on the input, in the model's preprocessed space, of one channel's
mean activation (or one class's logit), with after each step

- L2 decay: ``x *= 1 - decay``;
- a Gaussian blur every ``blur_every`` steps (per channel, so 1- and 3-channel inputs alike);
- clipping of small-norm pixels: pixels whose norm over channels is below the ``norm_percentile``-th
  percentile are set to 0 (the data's mean after de-normalization);
- clipping of small-contribution pixels: pixels whose contribution ``|sum_c x * grad|`` (the first-order
  change of the objective when the pixel is set to 0) is below the ``contribution_percentile``-th
  percentile are set to 0;
- the pixels kept inside the range real images have (0..1 before normalization).

The step is the gradient divided by its mean magnitude times ``lr``, so one setting fits networks whose
gradients differ by orders of magnitude. Seeded, bounded (``MAX_STEPS``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from layerlab.core.errors import ConfigError
from layerlab.inference.inspect import render
from layerlab.inference.inspect.activations import Hooks, LayerEntry, model_device

MAX_STEPS = 2000
DEFAULT_STEPS = 64


@dataclass(frozen=True)
class Regularizers:
    """The knobs of the search (defaults in the range of Yosinski et al.'s hyper-parameter table)."""

    steps: int = DEFAULT_STEPS
    lr: float = 0.1
    decay: float = 0.02
    blur_every: int = 4
    blur_sigma: float = 1.0
    norm_percentile: float = 10.0
    contribution_percentile: float = 10.0

    def check(self) -> None:
        _whole(self.steps, "steps", 1, MAX_STEPS)
        _whole(self.blur_every, "blur_every", 1, MAX_STEPS)
        for name, low, high in (
            ("lr", 0.0, 10.0),
            ("decay", 0.0, 1.0),
            ("blur_sigma", 0.0, 10.0),
            ("norm_percentile", 0.0, 100.0),
            ("contribution_percentile", 0.0, 100.0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or not low <= value <= high:
                raise ConfigError(f"{name} must be a number from {low} to {high}, got {value!r}", where=name)
        if self.lr <= 0:
            raise ConfigError(f"lr must be above 0, got {self.lr}", where="lr")
        if self.decay >= 1:
            raise ConfigError(f"decay must be below 1, got {self.decay}", where="decay")


def _whole(value, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"{name} must be a whole number from {low} to {high}, got {value!r}", where=f"--{name}"
        )


@dataclass
class MaxResult:
    """The best input found (preprocessed space; every candidate is a regularized image), the objective
    of the starting noise and of that input, and the objective after every step."""

    image: np.ndarray
    start: float
    final: float
    history: list[float] = field(default_factory=list)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur each channel of (N, C, H, W) with a Gaussian of ``sigma`` pixels (reflected edges)."""
    if sigma <= 0:
        return x
    radius = max(1, int(math.ceil(2 * sigma)))
    radius = min(radius, (min(x.shape[-2:]) - 1) or 1)
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > radius else "replicate"
    x = F.conv2d(
        F.pad(x, (radius, radius, 0, 0), mode=mode),
        kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1),
        groups=channels,
    )
    return F.conv2d(
        F.pad(x, (0, 0, radius, radius), mode=mode),
        kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1),
        groups=channels,
    )


def _pixel_range(preprocessing: dict, channels: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel, the preprocessed values of pixel 0 and pixel 1 (the range of real images)."""
    mean = np.asarray(preprocessing.get("mean") or [0.0], np.float32)
    std = np.asarray(preprocessing.get("std") or [1.0], np.float32)
    if preprocessing.get("normalize") == "none" or len(mean) not in (1, channels):
        mean, std = np.zeros(1, np.float32), np.ones(1, np.float32)
    std = np.where(std > 1e-12, std, 1.0)
    low = torch.as_tensor(np.broadcast_to((0 - mean) / std, (channels,)).copy(), device=device).view(
        1, -1, 1, 1
    )
    high = torch.as_tensor(np.broadcast_to((1 - mean) / std, (channels,)).copy(), device=device).view(
        1, -1, 1, 1
    )
    return low, high


def _zero_below(x: torch.Tensor, score: torch.Tensor, percentile: float) -> torch.Tensor:
    """``x`` with the pixels whose ``score`` (N, H, W) is below its ``percentile``-th percentile (per
    image) set to 0."""
    if percentile <= 0:
        return x
    flat = score.reshape(score.shape[0], -1)
    rank = min(flat.shape[1], int(percentile / 100.0 * flat.shape[1]) + 1)
    threshold = flat.kthvalue(rank, dim=1).values.view(-1, 1, 1)
    return x * (score >= threshold).unsqueeze(1).to(x.dtype)


Target = tuple[LayerEntry | None, int]  # (layer, channel or unit), or (None, class index)


def _objectives(trained, x: torch.Tensor, hooks: Hooks, targets: list[Target]) -> torch.Tensor:
    """Image i's objective: target i's channel mean (dense unit) or class logit, one value per image."""
    logits = trained.model(x)
    values = []
    for i, (entry, unit) in enumerate(targets):
        if entry is None:
            values.append(logits[i, unit])
            continue
        out = hooks.outputs[entry.name]
        values.append(out[i, unit].mean() if out.ndim > 2 else out[i, unit])
    return torch.stack(values)


def maximize(
    trained,
    *,
    entry: LayerEntry | None = None,
    unit: int,
    regularizers: Regularizers | None = None,
    seed: int = 0,
) -> MaxResult:
    """Search the input that maximizes channel ``unit`` of ``entry`` (or class ``unit``'s logit, entry None).

    Args:
        trained: a ``TrainedModel`` on images (C, H, W).
        entry: the layer (its channel's mean over positions, or a dense unit); None for a class.
        unit: the channel, unit or class index (checked by the caller).
        regularizers: the search's settings.
        seed: the starting noise's seed (the same seed gives the same image).
    """
    return maximize_many(trained, [(entry, unit)], regularizers=regularizers, seed=seed)[0]


def maximize_many(
    trained, targets: list[Target], *, regularizers: Regularizers | None = None, seed: int = 0
) -> list[MaxResult]:
    """``maximize`` for several targets at once: one image per target, searched as one batch (the
    network is in eval mode, so the images do not interact; one pass costs less than one per target)."""
    reg = regularizers or Regularizers()
    reg.check()
    if len(trained.input_shape) != 3:
        raise ConfigError(
            f"activation maximization needs image inputs (C, H, W), this run takes {list(trained.input_shape)}"
        )
    device = model_device(trained)
    generator = torch.Generator().manual_seed(int(seed))
    start = 0.1 * torch.randn((1, *trained.input_shape), generator=generator)
    x = start.repeat(len(targets), 1, 1, 1).to(device)  # every target from the same seeded noise
    low, high = _pixel_range(trained.preprocessing, trained.input_shape[0], device)
    history = []
    layers = list({entry.name: entry for entry, _ in targets if entry is not None}.values())
    best = x.clone()
    best_values = torch.full((len(targets),), -torch.inf, device=device)
    with Hooks(trained.model, layers, keep_graph=True) as hooks:
        for step in range(reg.steps + 1):  # the last pass only scores the last image
            x.requires_grad_(step < reg.steps)
            values = _objectives(trained, x, hooks, targets)
            history.append(values.detach().cpu().tolist())
            with torch.no_grad():
                better = values.detach() > best_values
                best[better], best_values[better] = x.detach()[better], values.detach()[better]
            if step == reg.steps:
                break
            (grad,) = torch.autograd.grad(values.sum(), x)
            x = _regularized_step(x.detach(), grad, step, reg, low, high)
    images = best.cpu().numpy()
    return [
        MaxResult(
            image=images[i],
            start=history[0][i],
            final=float(best_values[i]),
            history=[h[i] for h in history[1:]],
        )
        for i in range(len(targets))
    ]


def _regularized_step(x, grad, step: int, reg: Regularizers, low, high) -> torch.Tensor:
    """One ascent step, then Yosinski's regularizers and the pixel range."""
    with torch.no_grad():
        scale = grad.abs().mean(dim=(1, 2, 3), keepdim=True) + 1e-12
        x = (x + reg.lr * grad / scale) * (1 - reg.decay)
        if reg.blur_every and (step + 1) % reg.blur_every == 0:
            x = gaussian_blur(x, reg.blur_sigma)
        x = _zero_below(x, x.norm(dim=1), reg.norm_percentile)
        x = _zero_below(x, (x * grad).sum(dim=1).abs(), reg.contribution_percentile)
        return torch.maximum(torch.minimum(x, high), low)


def maximize_image(trained, result: MaxResult, path) -> str:
    """The found input de-normalized (and scaled up) as a PNG; returns its name."""
    picture = render.to_rgb(render.denormalize(result.image, trained.preprocessing))
    return render.save_png(render.upscale(picture, side=128), path)
