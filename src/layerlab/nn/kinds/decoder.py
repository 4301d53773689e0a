"""Decoder kinds that grow feature maps: convtranspose2d and upsample.

A transposed convolution is the gradient of a convolution with respect to its input: along one axis
its output size is (H - 1)*S - 2P + F + OP (the inverse of (W - F + 2P)/S + 1, the output padding OP
choosing among the sizes a strided conv maps to the same output). ``upsample`` repeats (nearest) or
interpolates (bilinear) pixels by a scale factor or to a given size; it has no parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from layerlab.core.errors import SpecError
from layerlab.nn.kinds.base import (
    MAX_WIDTH,
    MAX_WINDOW,
    Counts,
    Init,
    LayerSpec,
    Shape,
    ShapeContext,
    option,
    register_kind,
)

IMAGE_FIX = (
    "give it feature maps (C, H, W): put it after a conv2d, or turn a vector into a map first with "
    "{kind: unflatten, shape: [C, H, W]}"
)
MAX_MAP_SIDE = 16_384  # the largest side a decoder may grow a map to
MAX_SCALE = 64


def transposed_size(size: int, kernel: int, stride: int, padding: int, output_padding: int) -> int:
    """(H - 1)*S - 2P + F + OP: the output size of a transposed convolution along one axis."""
    return (size - 1) * stride - 2 * padding + kernel + output_padding


@register_kind("convtranspose2d")
@dataclass(kw_only=True)
class ConvTranspose2dSpec(LayerSpec):
    doc = (
        "transposed 2-D convolution (a 'deconvolution') over maps (C, H, W); output size "
        "(H - 1)*S - 2P + F + OP, e.g. kernel 2 stride 2 doubles H and W"
    )
    out: int | Literal["classes"] = option(help="output channels (filters)", minimum=1, maximum=MAX_WIDTH)
    kernel: int = option(3, help="square kernel size F", minimum=1, maximum=MAX_WINDOW)
    stride: int = option(1, help="stride S (the growth factor)", minimum=1, maximum=MAX_WINDOW)
    padding: int = option(
        0, help="padding P removed from each side of the output", minimum=0, maximum=MAX_WINDOW
    )
    output_padding: int = option(
        0,
        help="OP extra rows/columns added on one side; must be smaller than the stride",
        minimum=0,
        maximum=MAX_WINDOW,
    )
    bias: bool = option(True, help="learn a bias per filter")
    init: Init = option("default", help="default (PyTorch's), xavier (randn/sqrt(n)) or he (randn*sqrt(2/n))")

    def check(self, where: str) -> None:
        if self.output_padding >= self.stride:
            raise SpecError(
                f"output_padding must be smaller than the stride, got output_padding {self.output_padding} "
                f"with stride {self.stride}",
                hint=f"use output_padding in [0, {self.stride - 1}] or a larger stride",
                where=where,
            )

    def _side(self, shape: Shape, size: int, ctx: ShapeContext) -> int:
        value = transposed_size(size, self.kernel, self.stride, self.padding, self.output_padding)
        arithmetic = (
            f"({size} - 1)*{self.stride} - 2*{self.padding} + {self.kernel} + {self.output_padding} = {value}"
        )
        if value < 1:
            raise ctx.fail(
                shape,
                f"{arithmetic} < 1",
                f"use less padding (at most {(self.kernel + self.output_padding + (size - 1) * self.stride - 1) // 2})",
            )
        if value > MAX_MAP_SIDE:
            raise ctx.fail(shape, f"{arithmetic} is above {MAX_MAP_SIDE:,}", "use a smaller stride or kernel")
        return value

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        ctx.need_rank(shape, 3, "feature maps (C, H, W)", IMAGE_FIX)
        return (ctx.size(self.out), self._side(shape, shape[1], ctx), self._side(shape, shape[2], ctx))

    def counts(self, shape: Shape, out: Shape, ctx: ShapeContext) -> Counts:
        weights = shape[0] * out[0] * self.kernel * self.kernel
        params = weights + (out[0] if self.bias else 0)
        # Every input pixel is scattered through the whole filter bank once.
        macs = weights * shape[1] * shape[2]
        warnings = []
        if self.kernel % self.stride:
            warnings.append(
                f"kernel {self.kernel} is not a multiple of stride {self.stride}: the output has a checkerboard "
                "of overlaps (Odena et al. 2016); kernel = k*stride, or upsample + conv2d, avoids it"
            )
        return Counts(params=params, macs=macs, warnings=warnings)


@register_kind("upsample")
@dataclass(kw_only=True)
class UpsampleSpec(LayerSpec):
    doc = (
        "grow maps (C, H, W) by a scale factor (output floor(H*scale)) or to a size [H, W], repeating "
        "pixels (nearest) or interpolating them (bilinear); no parameters"
    )
    scale: float | None = option(
        None, help="scale factor for both sides (give scale or size)", above=0.0, maximum=MAX_SCALE
    )
    size: list[int] | None = option(
        None, help="[H, W] of the output (give scale or size)", minimum=1, maximum=MAX_MAP_SIDE
    )
    mode: Literal["nearest", "bilinear"] = option("nearest", help="nearest (repeat) or bilinear")

    def check(self, where: str) -> None:
        if (self.scale is None) == (self.size is None):
            raise SpecError(
                "upsample needs exactly one of scale and size",
                hint="e.g. {kind: upsample, scale: 2} or {kind: upsample, size: [28, 28]}",
                where=where,
            )
        if self.size is not None and len(self.size) != 2:
            raise SpecError(f"size must be [H, W], got {self.size}", hint="e.g. size: [28, 28]", where=where)

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        ctx.need_rank(shape, 3, "feature maps (C, H, W)", IMAGE_FIX)
        if self.size is not None:
            return (shape[0], *self.size)
        sides = tuple(math.floor(side * self.scale) for side in shape[1:])
        if min(sides) < 1:
            raise ctx.fail(
                shape,
                f"scale {self.scale} gives {sides[0]}x{sides[1]}: floor(side*scale) < 1",
                "use a larger scale",
            )
        if max(sides) > MAX_MAP_SIDE:
            raise ctx.fail(
                shape, f"scale {self.scale} gives a side above {MAX_MAP_SIDE:,}", "use a smaller scale"
            )
        return (shape[0], *sides)

    def counts(self, shape: Shape, out: Shape, ctx: ShapeContext) -> Counts:
        # Bilinear: 4 weighted neighbours per output value; nearest copies.
        macs = 4 * math.prod(out) if self.mode == "bilinear" else 0
        return Counts(macs=macs)
