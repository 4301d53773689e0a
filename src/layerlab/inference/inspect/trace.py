"""A channel's activation over the frames of a sequence, as a trace with its peaks marked.

The seed's idea, made measurable: a shape that moves back and forth k times over T frames passes
any fixed place k times, so a conv channel that responds to the shape at one place shows k peaks.

Frames are (T, C, H, W). For a network on single images (C, H, W) the frames go through as a batch;
for a network on sequences (T, C, H, W) (``timedistributed``) the sequence goes through once and the
layers inside the per-frame body give one output per frame. A frame's value is the channel's mean
over positions (a dense unit's value). The per-frame values and the peaks are ``inference.frames``'
(the peak-counting baseline's), so the trace shown is the one the baseline counts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from layerlab.core.errors import DataError
from layerlab.inference import frames as clip_frames
from layerlab.inference.inspect.activations import LayerEntry

MAX_FRAMES = 4096


def channel_trace(trained, frames, entry: LayerEntry, channel: int) -> np.ndarray:
    """The per-frame activation (T,) of ``channel`` of layer ``entry`` over ``frames`` (T, C, H, W)
    (``inference.frames.activation_trace``, which the peak-counting baseline uses too)."""
    frames = torch.as_tensor(frames).float()
    if frames.ndim != 4 or not 1 <= len(frames) <= MAX_FRAMES:
        raise DataError(
            f"frames must be (T, C, H, W) with 1 to {MAX_FRAMES} frames, got shape {list(frames.shape)}",
            where="--input",
        )
    return clip_frames.activation_trace(trained, frames, entry.path, channel)


def count_peaks(trace: np.ndarray) -> list[int]:
    """Frame indices of the trace's peaks, as the peak-counting baseline counts them
    (``inference.frames.trace_peaks``: the top of each rise through the middle band of the range)."""
    return [int(p) for p in clip_frames.trace_peaks(trace)]


def trace_image(trace: np.ndarray, peaks: list[int], title: str, path: Path) -> str:
    """The trace over frames with its peaks marked, as a PNG (matplotlib, Agg); returns the file name."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 2.4), dpi=100)
    axes = figure.add_subplot()
    frames = np.arange(len(trace))
    axes.plot(frames, trace, color="#3b7dd8", linewidth=1.5)
    if peaks:
        axes.plot(peaks, trace[peaks], "v", color="#d84b3b", markersize=7, label=f"{len(peaks)} peaks")
        axes.legend(loc="upper right", fontsize=8)
    axes.set_xlabel("frame")
    axes.set_ylabel("activation")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path.name


def trace_part(trained, frames, entry: LayerEntry, channel: int, directory: Path) -> dict:
    """The trace, its peaks and its picture: ``{"layer", "channel", "image", "values", "peaks", "count"}``."""
    values = channel_trace(trained, frames, entry, channel)
    peaks = count_peaks(values)
    image = trace_image(values, peaks, f"{entry.name} channel {channel}", directory / "trace.png")
    return {
        "layer": entry.name,
        "channel": channel,
        "image": image,
        "values": [round(float(v), 6) for v in values],
        "peaks": peaks,
        "count": len(peaks),
    }
