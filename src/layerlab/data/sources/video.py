"""The ``repetition-counting`` generator: clips of a shape moving back and forth k times, classes "1".."K".

Each clip holds T frames (uint8, ``(T, 1, S, S)``) of one square or disc that oscillates along a random
direction through the frame: its offset from the centre is ``A * cos(2*pi*k*s(t) + phase)``, where the
time warp ``s(t) = t/T + w*sin(2*pi*t/T + b)/(2*pi)`` (``w`` < 0.5) keeps the motion monotone in time but
lets its speed change within the clip, so the k cycles are not evenly spaced. The amplitude, phase,
direction, size, brightness of shape and background, and the warp are drawn per clip; Gaussian pixel
noise is added last. Seeded: the same seed gives the same clips.

This is the task of Karpathy's CNN -> RNN example: a per-frame convnet sees where the shape is, a
recurrent net counts how often it turned around.
"""

from __future__ import annotations

import numpy as np

from layerlab.data.config import DataConfig
from layerlab.data.sources.base import RawData
from layerlab.data.videoconfig import VideoConfig

STREAM = 0x5245  # derives the generator's seed from the experiment seed
CHUNK = 256  # clips rendered at a time (float32 work arrays of CHUNK x T x S x S)


def count_classes(video: VideoConfig) -> list[str]:
    """The class names: "1" .. "K"."""
    return [str(k) for k in range(1, video.max_count + 1)]


def _clip_parameters(rng: np.random.Generator, n: int, video: VideoConfig) -> dict[str, np.ndarray]:
    side = video.size
    radius = rng.uniform(0.08, 0.16, n) * side
    reach = side / 2 - radius - 1  # the shape stays inside the frame
    return {
        "radius": radius,
        "amplitude": rng.uniform(0.45, 0.95, n) * reach,
        "phase": rng.uniform(0, 2 * np.pi, n),
        "angle": rng.uniform(0, np.pi, n),
        "warp": rng.uniform(0.0, 0.45, n),
        "warp_phase": rng.uniform(0, 2 * np.pi, n),
        "square": rng.random(n) < 0.5 if video.shape == "random" else np.full(n, video.shape == "square"),
        "foreground": rng.uniform(0.6, 1.0, n),
        "background": rng.uniform(0.0, 0.25, n),
    }


def offsets(counts: np.ndarray, params: dict[str, np.ndarray], steps: int) -> np.ndarray:
    """The shape's signed offset from the centre along its direction, ``(N, T)`` pixels."""
    u = np.arange(steps) / steps
    warped = u[None, :] + params["warp"][:, None] * np.sin(
        2 * np.pi * u[None, :] + params["warp_phase"][:, None]
    ) / (2 * np.pi)
    cycles = 2 * np.pi * counts[:, None] * warped + params["phase"][:, None]
    return params["amplitude"][:, None] * np.cos(cycles)


def _render(counts: np.ndarray, params: dict[str, np.ndarray], video: VideoConfig, rng) -> np.ndarray:
    """uint8 clips ``(N, T, 1, S, S)``."""
    side, steps = video.size, video.steps
    along = offsets(counts, params, steps)
    centre = (side - 1) / 2
    cy = centre + along * np.sin(params["angle"])[:, None]
    cx = centre + along * np.cos(params["angle"])[:, None]
    grid = np.arange(side, dtype=np.float32)
    dy = grid[None, None, :, None] - cy[:, :, None, None].astype(np.float32)
    dx = grid[None, None, None, :] - cx[:, :, None, None].astype(np.float32)
    radius = params["radius"][:, None, None, None].astype(np.float32)
    square = params["square"][:, None, None, None]
    inside = np.where(
        square, np.maximum(np.abs(dx), np.abs(dy)) <= radius, dx * dx + dy * dy <= radius * radius
    )
    fg = params["foreground"][:, None, None, None].astype(np.float32)
    bg = params["background"][:, None, None, None].astype(np.float32)
    frames = np.where(inside, fg, bg).astype(np.float32)
    if video.noise:
        frames += rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(video.noise)
    pixels = np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)
    return pixels[:, :, None, :, :]


def repetition_counting(cfg: DataConfig, seed: int) -> RawData:
    """``clips_per_class`` clips for each count 1..K (``data.video``), labels ``k - 1``, classes "1".."K"."""
    video = cfg.video or VideoConfig()
    rng = np.random.default_rng([seed, STREAM])
    counts = np.repeat(np.arange(1, video.max_count + 1), video.clips_per_class)
    counts = counts[rng.permutation(len(counts))]
    params = _clip_parameters(rng, len(counts), video)
    x = np.empty((len(counts), video.steps, 1, video.size, video.size), dtype=np.uint8)
    for start in range(0, len(counts), CHUNK):
        part = slice(start, start + CHUNK)
        x[part] = _render(counts[part], {k: v[part] for k, v in params.items()}, video, rng)
    return RawData(
        x=x, y=(counts - 1).astype(np.int64), classes=count_classes(video), kind="video", named_classes=True
    )
