"""Pooling kinds: maxpool2d, avgpool2d and global_avgpool."""

from __future__ import annotations

from dataclasses import dataclass

from layerlab.core.errors import SpecError
from layerlab.nn import shapes
from layerlab.nn.kinds.base import (
    MAX_WINDOW,
    Counts,
    LayerSpec,
    Shape,
    ShapeContext,
    option,
    register_kind,
)

IMAGE_FIX = "pool feature maps (C, H, W): put it after a conv2d, before flatten"


@dataclass(kw_only=True)
class _PoolBase(LayerSpec):
    kernel: int = option(2, help="square window F", minimum=1, maximum=MAX_WINDOW)
    stride: int | None = option(None, help="stride S (default: the window)", minimum=1, maximum=MAX_WINDOW)
    padding: int = option(0, help="padding P, at most F/2", minimum=0, maximum=MAX_WINDOW // 2)

    @property
    def step(self) -> int:
        return self.kernel if self.stride is None else self.stride

    def check(self, where: str) -> None:
        if self.padding < 0 or 2 * self.padding > self.kernel:
            raise SpecError(f"padding must be in [0, kernel/2], got {self.padding}", where=where)

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        ctx.need_rank(shape, 3, "an image (C, H, W)", IMAGE_FIX)
        channels, height, width = shape
        out_h, _ = shapes.window_output(
            shape, height, self.kernel, self.step, self.padding, ctx, strict=False
        )
        out_w, _ = shapes.window_output(shape, width, self.kernel, self.step, self.padding, ctx, strict=False)
        return (channels, out_h, out_w)

    def counts(self, shape: Shape, out: Shape, ctx: ShapeContext) -> Counts:
        warnings = []
        for size in dict.fromkeys(shape[1:]):
            _, note = shapes.window_output(
                shape, size, self.kernel, self.step, self.padding, ctx, strict=False
            )
            if note:
                warnings.append(note)
        if self.kernel > 3:
            warnings.append(
                f"pooling window {self.kernel} discards too much; windows over 3 are rarely used "
                "(kernel 2, stride 2 is the common choice)"
            )
        return Counts(warnings=warnings)


@register_kind("maxpool2d")
@dataclass(kw_only=True)
class MaxPool2dSpec(_PoolBase):
    doc = "max over each F x F window; (W - F + 2P)/S + 1, floored"


@register_kind("avgpool2d")
@dataclass(kw_only=True)
class AvgPool2dSpec(_PoolBase):
    doc = "mean over each F x F window; (W - F + 2P)/S + 1, floored"


@register_kind("global_avgpool")
@dataclass(kw_only=True)
class GlobalAvgPoolSpec(LayerSpec):
    doc = "mean of each channel over the whole map: (C, H, W) -> (C,)"

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        ctx.need_rank(shape, 3, "an image (C, H, W)", IMAGE_FIX)
        return (shape[0],)
