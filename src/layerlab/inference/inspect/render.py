"""Pictures of the inspect package, drawn with NumPy and Pillow (no pyplot figure, so each costs milliseconds).

Inputs are shown de-normalized (the run's ``(x - mean) / std`` undone, then [0, 1]); activation maps share
one colour scale per layer, so a weak or dead channel looks weak or dead next to the others.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

MIN_TILE = 32  # pixels: small maps and filters are scaled up (nearest) to at least this side
GAP = 1  # pixels between tiles
BACKGROUND = (40, 40, 40)


# Viridis as a degree-6 polynomial per channel (Matt Zucker's fit; within 3.3/255 of matplotlib's table),
# so drawing a map needs no matplotlib import (about half a second cold).
_VIRIDIS = np.array(
    [
        [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
        [0.1050930431085774, 1.404613529898575, 1.384590162594685],
        [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
        [-4.634230498983486, -5.799100973351585, -19.33244095627987],
        [6.228269936347081, 14.17993336680509, 56.69055260068105],
        [4.776384997670288, -13.74514537774601, -65.35303263337234],
        [-5.435455855934631, 4.645852612178535, 26.3124352495832],
    ]
)
_STEPS = np.linspace(0.0, 1.0, 256)[:, None]
VIRIDIS_LUT = (
    (np.clip(sum(c * _STEPS**i for i, c in enumerate(_VIRIDIS)), 0, 1) * 255).round().astype(np.uint8)
)


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB (viridis), an extra last axis of 3."""
    return VIRIDIS_LUT[(np.clip(values, 0.0, 1.0) * 255).round().astype(np.intp)]


def scale01(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """``values`` mapped linearly to [0, 1] between ``low`` and ``high`` (default: their min and max)."""
    values = np.asarray(values, dtype=np.float32)
    low = float(np.min(values)) if low is None else low
    high = float(np.max(values)) if high is None else high
    if not math.isfinite(high - low) or high - low < 1e-12:
        return np.zeros_like(values)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def denormalize(x: np.ndarray, preprocessing: dict) -> np.ndarray:
    """One preprocessed example (C, H, W) -> values in [0, 1] as the image was before normalization."""
    x = np.asarray(x, dtype=np.float32)
    mean = np.asarray(preprocessing.get("mean") or [0.0], dtype=np.float32)
    std = np.asarray(preprocessing.get("std") or [1.0], dtype=np.float32)
    if preprocessing.get("normalize") == "none" or len(mean) not in (1, x.shape[0]):
        mean, std = np.zeros(1, np.float32), np.ones(1, np.float32)
    shape = (-1,) + (1,) * (x.ndim - 1)
    return np.clip(x * std.reshape(shape) + mean.reshape(shape), 0.0, 1.0)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] with C 1 or 3 -> (H, W, 3) uint8 (grey shown as grey)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[None]
    if image.shape[0] != 3:
        image = np.repeat(image[:1], 3, axis=0)
    return (np.clip(image, 0.0, 1.0).transpose(1, 2, 0) * 255).round().astype(np.uint8)


def upscale(tile: np.ndarray, side: int = MIN_TILE) -> np.ndarray:
    """An (H, W, 3) tile repeated (nearest) so its shorter side is at least ``side``."""
    factor = max(1, math.ceil(side / max(1, min(tile.shape[:2]))))
    return np.repeat(np.repeat(tile, factor, axis=0), factor, axis=1) if factor > 1 else tile


def tile_grid(tiles: list[np.ndarray], columns: int | None = None) -> np.ndarray:
    """Equal-sized (H, W, 3) uint8 tiles -> one mosaic, ``columns`` wide (default: about square)."""
    count = len(tiles)
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    height, width = tiles[0].shape[:2]
    grid = np.empty((rows * (height + GAP) + GAP, columns * (width + GAP) + GAP, 3), np.uint8)
    grid[:] = BACKGROUND
    for i, tile in enumerate(tiles):
        top, left = GAP + (i // columns) * (height + GAP), GAP + (i % columns) * (width + GAP)
        grid[top : top + height, left : left + width] = tile
    return grid


def map_grid(maps: np.ndarray) -> np.ndarray:
    """Activation maps (C, H, W) -> one grid of coloured tiles on a shared scale (0 = the layer's minimum)."""
    scaled = scale01(maps, low=min(0.0, float(maps.min())), high=float(maps.max()))
    factor = max(1, math.ceil(MIN_TILE / max(1, min(maps.shape[1:]))))
    tiles = colormap(scaled)  # (C, H, W, 3), coloured once for the whole layer
    if factor > 1:
        tiles = np.repeat(np.repeat(tiles, factor, axis=1), factor, axis=2)
    return tile_grid(list(tiles))


def heat_strip(values: np.ndarray) -> np.ndarray:
    """A (T, F) activation table (sequence outputs) -> a heat image, one row per step."""
    return upscale(colormap(scale01(values)), side=MIN_TILE)


def bar_strip(values: np.ndarray, height: int = 120, bar: int = 6, limit: int = 512) -> np.ndarray:
    """Dense activations (F,) -> bars up (positive, green) and down (negative, red) from a zero line."""
    values = np.asarray(values, dtype=np.float32).reshape(-1)[:limit]
    peak = float(np.abs(values).max()) or 1.0
    width = len(values) * bar + 2
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    middle = height // 2
    draw.line([(0, middle), (width, middle)], fill=(120, 120, 120))
    for i, value in enumerate(values):
        length = int(round((middle - 2) * abs(value) / peak))
        left = 1 + i * bar
        top, bottom = (middle - length, middle) if value >= 0 else (middle, middle + length)
        draw.rectangle(
            [left, top, left + bar - 2, bottom], fill=(90, 200, 120) if value >= 0 else (220, 90, 80)
        )
    return np.asarray(image)


def outline(tile: np.ndarray, box: tuple[int, int, int, int], scale: int, colour=(255, 60, 60)) -> np.ndarray:
    """``tile`` (already scaled by ``scale``) with the box ``(top, left, bottom, right)`` (unscaled, end exclusive)
    drawn as a rectangle."""
    image = Image.fromarray(tile)
    top, left, bottom, right = (v * scale for v in box)
    ImageDraw.Draw(image).rectangle(
        [left, top, right - 1, bottom - 1], outline=colour, width=max(1, scale // 3)
    )
    return np.asarray(image)


def save_png(array: np.ndarray, path: Path) -> str:
    """Write an (H, W, 3) uint8 array as PNG; returns the file's name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG", compress_level=1)
    return path.name
