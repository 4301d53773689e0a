"""What every layer of a trained network computes: forward hooks on the sub-modules named after the spec.

``layer_entries`` lists the spec's layers (top level, then the layers inside blocks as ``block.child``) with
their output shapes; ``capture`` records every layer's output for one batch; ``channel_stats`` runs a
dataset split through the network and keeps, per channel, the mean activation and whether it was ever
active (above zero anywhere, for any example): a channel never active is *dead*.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from layerlab.core.errors import ConfigError
from layerlab.inference.inspect import render

STATS_BATCH = 128  # examples per forward when going over a split
CONV_KINDS = ("conv2d", "coordconv2d")  # layers whose weights are image filters


@dataclass(frozen=True)
class LayerEntry:
    """One spec layer as the inspect tab lists it."""

    name: str
    kind: str
    path: str  # the sub-module's path in the built network (``res1.conv_a`` inside a block)
    shape: tuple[int, ...]  # output shape of one example
    conv: bool  # a convolution (its weights are filters)

    @property
    def spatial(self) -> bool:
        """Whether the output is feature maps (C, H, W): a receptive field and a map grid exist."""
        return len(self.shape) == 3

    @property
    def channels(self) -> int:
        """Channels of a map, units of a vector, features of a sequence."""
        if len(self.shape) == 4:  # (T, C, H, W): frames of maps
            return self.shape[1]
        return self.shape[0] if len(self.shape) == 3 else self.shape[-1]


def network_spec(trained):
    """The parsed spec of a trained model (the checkpoint's network dict)."""
    from layerlab.nn.spec import parse_network

    return parse_network(trained.network)


def layer_entries(trained) -> list[LayerEntry]:
    """Every spec layer in forward order, with its output shape and sub-module path."""
    from layerlab.nn.shapes import summarize

    spec = network_spec(trained)
    shapes = {row.name: tuple(row.output_shape) for row in summarize(spec).rows}
    entries: list[LayerEntry] = []

    def visit(layers, prefix: str) -> None:
        for layer in layers:
            path = f"{prefix}{layer.name}"
            conv = layer.kind in CONV_KINDS
            entries.append(LayerEntry(layer.name, layer.kind, path, shapes[layer.name], conv))
            visit(layer.children(), f"{path}.")

    visit(spec.layers, "")
    return entries


def find_entry(trained, name: str, entries: list[LayerEntry] | None = None) -> LayerEntry:
    """The entry called ``name`` (or by its path); an unknown name lists the layer names."""
    entries = entries if entries is not None else layer_entries(trained)
    for entry in entries:
        if name in (entry.name, entry.path):
            return entry
    from layerlab.core.configtree import suggest

    names = [e.name for e in entries]
    close = suggest(name, names)
    hint = f"did you mean '{close}'? " if close else ""
    raise ConfigError(f"unknown layer '{name}'", hint=f"{hint}layers: {', '.join(names)}", where="--layer")


def check_channel(entry: LayerEntry, channel: int) -> int:
    """``channel`` as an index of ``entry``'s channels, or a ConfigError naming the valid range."""
    if isinstance(channel, bool) or not isinstance(channel, int | np.integer):
        raise ConfigError(f"channel must be a whole number, got {channel!r}", where="--channel")
    if not 0 <= int(channel) < entry.channels:
        raise ConfigError(
            f"channel {channel} is out of range for layer {entry.name} ({entry.channels} channels)",
            hint=f"give a channel from 0 to {entry.channels - 1}",
            where="--channel",
        )
    return int(channel)


def module_of(model: torch.nn.Module, entry: LayerEntry) -> torch.nn.Module:
    """The built sub-module of a spec layer (by path; else the one whose last path part is its name)."""
    try:
        return model.get_submodule(entry.path)
    except AttributeError:
        for path, module in model.named_modules():
            if path.split(".")[-1] == entry.name:
                return module
    raise ConfigError(f"layer {entry.name} has no module in the built network", where="--layer")


def _first_tensor(output):
    """A module's output tensor (the first element of a tuple output)."""
    while isinstance(output, tuple | list):
        output = output[0]
    return output


class Hooks:
    """Forward hooks on the given layers; ``outputs[name]`` holds the last batch's detached output."""

    def __init__(self, model: torch.nn.Module, entries: Iterable[LayerEntry], *, keep_graph: bool = False):
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = []
        for entry in entries:
            self._handles.append(
                module_of(model, entry).register_forward_hook(self._recorder(entry.name, keep_graph))
            )

    def _recorder(self, name: str, keep_graph: bool):
        def record(_module, _inputs, output):
            tensor = _first_tensor(output)
            self.outputs[name] = tensor if keep_graph else tensor.detach()

        return record

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()


def model_device(trained) -> torch.device:
    return next(trained.model.parameters()).device


def capture(trained, x: torch.Tensor, entries: list[LayerEntry] | None = None) -> tuple[dict, torch.Tensor]:
    """``({layer name: output batch}, logits)`` of one forward of the preprocessed batch ``x``."""
    entries = entries if entries is not None else layer_entries(trained)
    with Hooks(trained.model, entries) as hooks, torch.no_grad():
        logits = trained.model(x.to(model_device(trained)).float())
    return hooks.outputs, logits.detach()


def per_channel(output: torch.Tensor, entry: LayerEntry) -> torch.Tensor:
    """A layer's output batch reshaped to (examples, channels, positions)."""
    if len(entry.shape) == 4:  # (N, T, C, H, W): every frame and pixel is a position
        return output.transpose(1, 2).reshape(output.shape[0], output.shape[2], -1)
    if len(entry.shape) == 2:  # (N, T, F): features are the channels
        return output.transpose(1, 2).reshape(output.shape[0], output.shape[2], -1)
    return output.reshape(output.shape[0], output.shape[1] if output.ndim > 1 else 1, -1)


def batches(x, size: int = STATS_BATCH):
    """Slices of a split's inputs (a tensor or a data view) as float tensors."""
    for start in range(0, len(x), size):
        yield torch.as_tensor(x[start : start + size]).float()


def channel_stats(trained, x, entries: list[LayerEntry] | None = None, on_batch=None) -> dict[str, dict]:
    """Per layer, over every example of ``x``: each channel's mean activation and the dead channels.

    A channel is dead when its activation is never above zero, for any example at any position.
    ``on_batch(outputs)`` (optional) sees every batch's ``{layer name: output}``, so another per-example
    measure (the top 9's peaks) shares the same forwards.

    Returns:
        ``{name: {"mean": [per channel], "dead": count, "dead_channels": [indices], "n": examples}}``.
    """
    entries = entries if entries is not None else layer_entries(trained)
    sums: dict[str, torch.Tensor] = {}
    peaks: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    with Hooks(trained.model, entries) as hooks, torch.no_grad():
        for batch in batches(x):
            trained.model(batch.to(model_device(trained)))
            if on_batch is not None:
                on_batch(hooks.outputs)
            for entry in entries:
                values = per_channel(hooks.outputs[entry.name].float(), entry)
                total, peak = values.sum(dim=(0, 2)).double(), values.amax(dim=(0, 2))
                sums[entry.name] = sums[entry.name] + total if entry.name in sums else total
                peaks[entry.name] = torch.maximum(peaks[entry.name], peak) if entry.name in peaks else peak
                counts[entry.name] = counts.get(entry.name, 0) + values.shape[0] * values.shape[2]
    examples = len(x)
    stats = {}
    for entry in entries:
        if entry.name not in sums:
            continue
        dead = torch.nonzero(peaks[entry.name] <= 0).flatten().tolist()
        stats[entry.name] = {
            "mean": [round(v, 6) for v in (sums[entry.name] / counts[entry.name]).tolist()],
            "dead": len(dead),
            "dead_channels": dead,
            "n": examples,
        }
    return stats


def activation_image(output: np.ndarray, entry: LayerEntry, path: Path) -> str | None:
    """Draw one example's output of a layer: a grid of every channel's map (C, H, W), a heat strip
    (T, F) or bars (F,); returns the file name (None for shapes with no picture)."""
    if output.ndim == 3:
        picture = render.map_grid(output)
    elif output.ndim == 4:  # frames of maps: the first frame's channels
        picture = render.map_grid(output[0])
    elif output.ndim == 2:
        picture = render.heat_strip(output)
    elif output.ndim == 1:
        picture = render.bar_strip(output)
    else:
        return None
    return render.save_png(picture, path)


def values_summary(output: np.ndarray) -> dict:
    """Min, max and mean of one example's output (for the index)."""
    return {
        "min": round(float(output.min()), 6),
        "max": round(float(output.max()), 6),
        "mean": round(float(output.mean()), 6),
    }
