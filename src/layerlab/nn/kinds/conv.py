"""Convolution kinds: conv2d and coordconv2d (conv2d over the input plus x/y coordinate channels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from layerlab.core.errors import SpecError
from layerlab.nn import shapes
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
    "use image data (e.g. data.source=digits), or tile a vector into a map first: {kind: tile, size: [H, W]}"
)


@dataclass(kw_only=True)
class _ConvBase(LayerSpec):
    out: int | Literal["classes"] = option(help="output channels (filters)", minimum=1, maximum=MAX_WIDTH)
    kernel: int = option(3, help="square kernel size F", minimum=1, maximum=MAX_WINDOW)
    stride: int = option(1, help="stride S", minimum=1, maximum=MAX_WINDOW)
    padding: int | Literal["same"] = option(
        0, help="zero padding P; 'same' is (F-1)/2 for odd F", minimum=0, maximum=MAX_WINDOW
    )
    bias: bool = option(True, help="learn a bias per filter")
    init: Init = option("default", help="default (PyTorch's), xavier (randn/sqrt(n)) or he (randn*sqrt(2/n))")

    def check(self, where: str) -> None:
        if self.padding == "same" and self.kernel % 2 == 0:
            raise SpecError(
                f"padding 'same' needs an odd kernel, got {self.kernel}",
                hint="use kernel 3 or 5",
                where=where,
            )

    @property
    def pad(self) -> int:
        """The padding as a number ('same' resolved)."""
        return (self.kernel - 1) // 2 if self.padding == "same" else int(self.padding)

    def extra_channels(self) -> int:
        return 0

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        ctx.need_rank(shape, 3, "an image (C, H, W)", IMAGE_FIX)
        _, height, width = shape
        # A fraction is floored, as torch does, and warned about (counts): the ResNet stride-2 conv
        # (3x3, padding 1) on an even size gives (W - 1)/2 + 1/2.
        out_h, _ = shapes.window_output(shape, height, self.kernel, self.stride, self.pad, ctx, strict=False)
        out_w, _ = shapes.window_output(shape, width, self.kernel, self.stride, self.pad, ctx, strict=False)
        return (ctx.size(self.out), out_h, out_w)

    def counts(self, shape: Shape, out: Shape, ctx: ShapeContext) -> Counts:
        in_channels = shape[0] + self.extra_channels()
        # One filter bank shared across positions: weights count once, multiply-adds once per output pixel.
        weights = out[0] * in_channels * self.kernel * self.kernel
        params = weights + (out[0] if self.bias else 0)
        warnings = []
        for size in dict.fromkeys(shape[1:]):
            _, note = shapes.window_output(shape, size, self.kernel, self.stride, self.pad, ctx, strict=False)
            if note:
                warnings.append(note)
        if self.stride == 1 and self.kernel > 1 and self.pad != (self.kernel - 1) / 2:
            keep = f"padding={(self.kernel - 1) // 2} ((F-1)/2) keeps {shape[1]}x{shape[2]}"
            if self.kernel % 2 == 0:
                keep = "an odd kernel with padding (F-1)/2 keeps the size"
            warnings.append(
                f"stride 1, padding {self.pad} shrinks {shape[1]}x{shape[2]} to {out[1]}x{out[2]}; {keep}"
            )
        return Counts(params=params, macs=weights * out[1] * out[2], warnings=warnings)


@register_kind("conv2d")
@dataclass(kw_only=True)
class Conv2dSpec(_ConvBase):
    doc = "2-D convolution over an image (C, H, W); output size (W - F + 2P)/S + 1"


@register_kind("coordconv2d")
@dataclass(kw_only=True)
class CoordConv2dSpec(_ConvBase):
    doc = (
        "CoordConv (Liu et al. 2018): conv2d over the input plus two channels holding each pixel's column x "
        "then row y scaled to [-1, 1], as the official AddCoords (and with_r: the distance sqrt(x^2 + y^2) "
        "from the centre)"
    )
    kernel: int = option(1, help="square kernel size F", minimum=1, maximum=MAX_WINDOW)
    with_r: bool = option(False, help="add a radius channel")

    def extra_channels(self) -> int:
        return 3 if self.with_r else 2
