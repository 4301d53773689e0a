"""First-layer filters as images: what the first convolution looks for in the input pixels.

A filter over a 3-channel input is one colour tile; over a 1-channel input one grey tile; over any other
channel count (CoordConv's extra coordinate channels) one grey tile per input channel, side by side.
Each filter is scaled on its own, symmetrically around zero (grey = 0), as CS231n's pictures are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from layerlab.inference.inspect import render
from layerlab.inference.inspect.activations import LayerEntry, layer_entries, module_of

MAX_FILTERS = 256  # tiles drawn at most


def first_conv(trained, entries: list[LayerEntry] | None = None) -> LayerEntry | None:
    """The first convolution of the network, or None for a network without one."""
    entries = entries if entries is not None else layer_entries(trained)
    return next((entry for entry in entries if entry.conv), None)


def first_layer_filters(trained, entries: list[LayerEntry] | None = None) -> np.ndarray | None:
    """The first convolution's weights (filters, in-channels, kernel, kernel), or None without one."""
    entry = first_conv(trained, entries)
    if entry is None:
        return None
    weight = module_of(trained.model, entry).weight
    return weight.detach().float().cpu().numpy()


def _symmetric(weights: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] with 0 at grey: ``0.5 + w / (2 max|w|)``."""
    peak = float(np.abs(weights).max()) or 1.0
    return 0.5 + weights / (2 * peak)


def filter_tiles(weights: np.ndarray) -> list[np.ndarray]:
    """One (H, W, 3) tile per filter."""
    tiles = []
    for weight in weights[:MAX_FILTERS]:
        scaled = _symmetric(weight)
        if weight.shape[0] in (1, 3):
            tiles.append(render.upscale(render.to_rgb(scaled)))
        else:  # one grey tile per input channel, side by side
            parts = [render.to_rgb(channel[None]) for channel in scaled]
            sep = np.full((parts[0].shape[0], 1, 3), render.BACKGROUND, np.uint8)
            row = np.concatenate([p for part in parts for p in (part, sep)][:-1], axis=1)
            tiles.append(render.upscale(row))
    return tiles


def filters_image(trained, path: Path, entries: list[LayerEntry] | None = None) -> dict | None:
    """Draw the first layer's filters into ``path``: ``{"layer", "image", "count", "channels", "kernel"}``."""
    entry = first_conv(trained, entries)
    weights = first_layer_filters(trained, entries)
    if entry is None or weights is None:
        return None
    name = render.save_png(render.tile_grid(filter_tiles(weights)), path)
    return {
        "layer": entry.name,
        "image": name,
        "count": int(weights.shape[0]),
        "channels": int(weights.shape[1]),
        "kernel": int(weights.shape[-1]),
    }
