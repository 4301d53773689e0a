"""Reshaping kinds: flatten (anything to a vector), unflatten (a vector to a shape), reshape (any shape
to another with as many values) and tile (a vector broadcast to a feature map)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from layerlab.core.errors import SpecError
from layerlab.nn.kinds.base import (
    MAX_WIDTH,
    MAX_WINDOW,
    LayerSpec,
    Shape,
    ShapeContext,
    format_shape,
    option,
    register_kind,
)

MAX_TARGET_RANK = 4


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


@dataclass(kw_only=True)
class _ReshapeBase(LayerSpec):
    shape: list[int] = option(
        help="target shape of one example, e.g. [16, 7, 7]; one -1 means 'whatever is left'",
        minimum=-1,
        maximum=MAX_WIDTH,
        min_items=1,
    )

    def check(self, where: str) -> None:
        example = "e.g. shape: [16, 7, 7]"
        if not 1 <= len(self.shape) <= MAX_TARGET_RANK:
            raise SpecError(
                f"shape must have 1 to {MAX_TARGET_RANK} sizes, got {self.shape}", hint=example, where=where
            )
        if 0 in self.shape:
            raise SpecError(f"every size of shape must be at least 1 (or -1), got {self.shape}", where=where)
        if self.shape.count(-1) > 1:
            raise SpecError(
                f"at most one size of shape may be -1, got {self.shape}", hint=example, where=where
            )

    def target(self, shape: Shape, ctx: ShapeContext) -> Shape:
        """The target shape with -1 resolved; a ShapeError when the value counts differ."""
        count = math.prod(shape)
        known = math.prod(s for s in self.shape if s != -1)
        wanted = format_shape(tuple(self.shape)).replace("-1", "?")
        if -1 in self.shape:
            if count % known:
                raise ctx.fail(
                    shape,
                    f"{count} values do not divide into {wanted} ({count} is not a multiple of {known})",
                    f"make the known sizes of shape multiply to a divisor of {count}",
                )
            return tuple(count // known if s == -1 else s for s in self.shape)
        if known != count:
            raise ctx.fail(
                shape,
                f"{count} values cannot be reshaped to {wanted} ({known} values)",
                f"give a shape whose sizes multiply to {count}, or use -1 for one of them",
            )
        return tuple(self.shape)

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        return self.target(shape, ctx)


@register_kind("reshape")
@dataclass(kw_only=True)
class ReshapeSpec(_ReshapeBase):
    doc = "reshape each example to 'shape' (same number of values, row-major order as torch.reshape)"


@register_kind("unflatten")
@dataclass(kw_only=True)
class UnflattenSpec(_ReshapeBase):
    doc = "the inverse of flatten: a vector (F,) to 'shape', e.g. (784,) -> (16, 7, 7) for a decoder"

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        if len(shape) != 1:
            raise ctx.fail(
                shape,
                "unflatten needs a vector (F,)",
                "add {kind: flatten} before it, or use {kind: reshape}",
            )
        return self.target(shape, ctx)
