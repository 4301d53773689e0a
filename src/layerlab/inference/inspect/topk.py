"""The dataset examples that excite a channel most, and the input patch each one's peak unit sees.

The receptive field follows the spec's windows (Dumoulin & Visin's arithmetic): starting from one pixel
(size 1, jump 1, centre 0), a window of kernel F, stride S and padding P makes
``size += (F - 1) * jump``, ``centre += ((F - 1) / 2 - P) * jump``, ``jump *= S``. Layers that keep the map
(activations, normalization, dropout) leave it as it is; a residual block is its body's field (the
projection shortcut is a 1x1 window, never larger). A unit at (r, c) of the layer then sees input rows
``centre + r * jump +- (size - 1) / 2``, clipped to the image.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from layerlab.inference.inspect import render
from layerlab.inference.inspect.activations import Hooks, LayerEntry, batches, model_device, network_spec

TOP = 9  # examples shown
WINDOW_KINDS = {"conv2d", "coordconv2d", "maxpool2d", "avgpool2d"}


@dataclass(frozen=True)
class ReceptiveField:
    """Side of the input patch one unit sees, the input step between neighbouring units, the first centre."""

    size: float
    jump: float
    start: float

    def box(self, row: int, col: int, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` (end exclusive) of the unit at ``(row, col)``, inside the image."""
        half = (self.size - 1) / 2
        top, left = self.start + row * self.jump - half, self.start + col * self.jump - half
        bottom, right = top + self.size, left + self.size
        return (
            max(0, math.floor(top + 1e-9)),
            max(0, math.floor(left + 1e-9)),
            min(height, math.ceil(bottom - 1e-9)),
            min(width, math.ceil(right - 1e-9)),
        )


def _window(layer) -> tuple[int, int, int] | None:
    """``(F, S, P)`` of a convolution or pooling layer, else None."""
    if layer.kind in ("conv2d", "coordconv2d"):
        return layer.kernel, layer.stride, layer.pad
    if layer.kind in ("maxpool2d", "avgpool2d"):
        return layer.kernel, layer.step, layer.padding
    return None


def _walk(layers, field: ReceptiveField, target: str, shapes: dict) -> tuple[ReceptiveField | None, bool]:
    """The field after each of ``layers`` until ``target``: ``(field, found)``; field None once unknown."""
    for layer in layers:
        children = layer.children()
        if children:
            inner, found = _walk(children, field, target, shapes)
            if found or inner is None:
                return inner, found
            field = inner
        elif (window := _window(layer)) is not None:
            kernel, stride, pad = window
            field = ReceptiveField(
                field.size + (kernel - 1) * field.jump,
                field.jump * stride,
                field.start + ((kernel - 1) / 2 - pad) * field.jump,
            )
        else:
            before, after = shapes.get(layer.name, ((), ()))
            if len(after) != 3 or tuple(before[1:]) != tuple(after[1:]):
                return None, layer.name == target  # the map is gone (flatten, global pooling) or unknown
        if layer.name == target:
            return field, True
    return field, False


def receptive_field(trained, name: str) -> ReceptiveField | None:
    """The receptive field of a unit of layer ``name`` on the input, or None where it is not spatial."""
    from layerlab.nn.shapes import summarize

    spec = network_spec(trained)
    if spec.input_shape is None or len(spec.input_shape) != 3:
        return None
    shapes = {row.name: (tuple(row.input_shape), tuple(row.output_shape)) for row in summarize(spec).rows}
    field, found = _walk(spec.layers, ReceptiveField(1.0, 1.0, 0.0), name, shapes)
    return field if found else None


class PeakCollector:
    """Per example, the largest activation of one channel and where it is; fed batch by batch with
    ``{layer name: output}`` (by ``channel_peaks``, or by ``channel_stats``'s ``on_batch``)."""

    def __init__(self, entry: LayerEntry, channel: int):
        self.entry, self.channel = entry, channel
        self._values: list[torch.Tensor] = []
        self._positions: list[torch.Tensor] = []

    def __call__(self, outputs: dict) -> None:
        out = outputs[self.entry.name].float()
        column = out[:, self.channel]
        flat = column.reshape(out.shape[0], -1) if out.ndim > 2 else column[:, None]
        peak, where = flat.max(dim=1)
        self._values.append(peak.cpu())
        self._positions.append(where.cpu())

    @property
    def seen(self) -> int:
        """Examples collected so far."""
        return sum(len(v) for v in self._values)

    def peaks(self) -> tuple[np.ndarray, np.ndarray]:
        """``(values, flat positions)``, one per example seen."""
        return torch.cat(self._values).numpy(), torch.cat(self._positions).numpy()


def channel_peaks(trained, x, entry: LayerEntry, channel: int) -> tuple[np.ndarray, np.ndarray]:
    """Per example of ``x``: the channel's largest activation and where it is (flat position index)."""
    collect = PeakCollector(entry, channel)
    with Hooks(trained.model, [entry]) as hooks, torch.no_grad():
        for batch in batches(x):
            trained.model(batch.to(model_device(trained)))
            collect(hooks.outputs)
    return collect.peaks()


def top_examples(trained, x, y, entry: LayerEntry, channel: int, k: int = TOP, peaks=None) -> dict:
    """The ``k`` examples of ``x`` whose peak activation of ``channel`` is largest, with the patch each sees.

    Args:
        peaks: ``PeakCollector.peaks()`` already taken over ``x`` (else a pass over ``x`` takes them).

    Returns:
        ``{"layer", "channel", "receptive_field", "examples": [{"index", "label", "activation",
        "position", "box"}]}``; position and box are None for a layer that is not spatial.
    """
    values, positions = peaks if peaks is not None else channel_peaks(trained, x, entry, channel)
    order = np.argsort(-values, kind="stable")[: min(k, len(values))]
    field = receptive_field(trained, entry.name) if entry.spatial else None
    height, width = trained.input_shape[-2:] if len(trained.input_shape) == 3 else (0, 0)
    examples = []
    for index in order.tolist():
        item = {
            "index": int(index),
            "label": _label(trained, y, index),
            "activation": round(float(values[index]), 6),
            "position": None,
            "box": None,
        }
        if field is not None:
            row, col = divmod(int(positions[index]), entry.shape[2])
            item["position"] = [row, col]
            item["box"] = list(field.box(row, col, height, width))
        examples.append(item)
    return {
        "layer": entry.name,
        "channel": channel,
        "receptive_field": asdict(field) if field is not None else None,
        "examples": examples,
    }


def _label(trained, y, index: int) -> str | None:
    """The class name of example ``index`` (None without labels, or for regression targets)."""
    if y is None:
        return None
    label = torch.as_tensor(y[index])
    if label.ndim or label.is_floating_point() or not 0 <= int(label) < len(trained.classes):
        return None
    return trained.classes[int(label)]


def topk_images(trained, x, result: dict, directory: Path) -> dict:
    """Draw the examples (the receptive field outlined) and their crops; adds ``image`` and ``crops``."""
    if len(trained.input_shape) != 3 or not result["examples"]:
        return {**result, "image": None, "crops": None}
    tiles, crops = [], []
    for item in result["examples"]:
        example = render.denormalize(
            torch.as_tensor(x[item["index"] : item["index"] + 1])[0].numpy(), trained.preprocessing
        )
        picture = render.to_rgb(example)
        big = render.upscale(picture, side=64)
        scale = big.shape[0] // picture.shape[0]
        if item["box"] is not None:
            top, left, bottom, right = item["box"]
            crops.append(np.asarray(_fit(picture[top:bottom, left:right], 64)))
            big = render.outline(big, tuple(item["box"]), scale)
        tiles.append(big)
    image = render.save_png(render.tile_grid(tiles, columns=3), directory / "topk.png")
    crop_image = (
        render.save_png(render.tile_grid(crops, columns=3), directory / "topk_crops.png") if crops else None
    )
    return {**result, "image": image, "crops": crop_image}


def _fit(patch: np.ndarray, side: int) -> np.ndarray:
    """A crop scaled (nearest) to ``side`` x ``side``, so crops of the image's edge line up with the rest."""
    from PIL import Image

    return np.asarray(Image.fromarray(patch).resize((side, side), Image.Resampling.NEAREST))
