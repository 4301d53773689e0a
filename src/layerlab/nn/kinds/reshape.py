"""Reshaping kinds: flatten (anything to a vector) and tile (a vector broadcast to a feature map)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from layerlab.core.errors import SpecError
from layerlab.nn.kinds.base import MAX_WINDOW, LayerSpec, Shape, ShapeContext, option, register_kind


@register_kind("flatten")
@dataclass(kw_only=True)
class FlattenSpec(LayerSpec):
    doc = "reshape each example to a vector (C*H*W,)"

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        return (math.prod(shape),)


@register_kind("tile")
@dataclass(kw_only=True)
class TileSpec(LayerSpec):
    doc = (
        "broadcast a vector (C,) to a feature map (C, H, W) of the given size, e.g. the (i, j) pair of "
        "the CoordConv coordinate-classification task to a 2x64x64 map"
    )
    size: list[int] = option(help="[H, W] of the map", minimum=1, maximum=MAX_WINDOW)

    def check(self, where: str) -> None:
        if len(self.size) != 2 or min(self.size) < 1:
            raise SpecError(
                f"size must be [H, W] with both at least 1, got {self.size}",
                hint="e.g. size: [64, 64]",
                where=where,
            )

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        if len(shape) != 1:
            raise ctx.fail(shape, "tile needs a vector (C,)", "add {kind: flatten} before it")
        return (shape[0], *self.size)
