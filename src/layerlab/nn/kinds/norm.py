"""Normalization and dropout kinds: batchnorm (1d/2d from the shape), batchnorm1d/2d, dropout, dropout2d."""

from __future__ import annotations

import math
from dataclasses import dataclass

from layerlab.core.errors import SpecError
from layerlab.nn.kinds.base import (
    Counts,
    LayerSpec,
    Shape,
    ShapeContext,
    option,
    register_kind,
)


@dataclass(kw_only=True)
class _BatchNormBase(LayerSpec):
    momentum: float = option(0.1, help="running-statistics momentum", minimum=0.0, below=1.0)
    eps: float = option(1e-5, help="added to the variance", above=0.0, below=1.0)

    def check(self, where: str) -> None:
        if self.eps <= 0:
            raise SpecError(f"eps must be positive, got {self.eps}", where=where)

    def dims(self, shape: Shape) -> int:
        """1 for a vector (F,), 2 for a map (C, H, W)."""
        return 1 if len(shape) == 1 else 2

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        if len(shape) not in self.accepted_ranks():
            want = " or ".join({1: "a vector (F,)", 3: "a map (C, H, W)"}[r] for r in self.accepted_ranks())
            raise ctx.fail(shape, f"{self.kind} needs {want}", "use batchnorm (it picks 1d or 2d) or move it")
        return shape

    def accepted_ranks(self) -> tuple[int, ...]:
        return (1, 3)

    def counts(self, shape: Shape, out: Shape, ctx: ShapeContext) -> Counts:
        # A scale and a shift per feature (channel); running mean/variance are buffers, not parameters.
        return Counts(params=2 * shape[0], macs=math.prod(shape))


@register_kind("batchnorm")
@dataclass(kw_only=True)
class BatchNormSpec(_BatchNormBase):
    doc = "batch normalization; 1d for a vector (F,), 2d (per channel) for a map (C, H, W)"


@register_kind("batchnorm1d")
@dataclass(kw_only=True)
class BatchNorm1dSpec(_BatchNormBase):
    doc = "batch normalization of a vector (F,)"

    def accepted_ranks(self) -> tuple[int, ...]:
        return (1,)


@register_kind("batchnorm2d")
@dataclass(kw_only=True)
class BatchNorm2dSpec(_BatchNormBase):
    doc = "batch normalization per channel of a map (C, H, W)"

    def accepted_ranks(self) -> tuple[int, ...]:
        return (3,)


@register_kind("dropout")
@dataclass(kw_only=True)
class DropoutSpec(LayerSpec):
    doc = "zero each value with probability p in training (scaled by 1/(1-p)); identity in evaluation"
    p: float = option(0.5, help="drop probability", minimum=0.0, below=1.0)


@register_kind("dropout2d")
@dataclass(kw_only=True)
class Dropout2dSpec(DropoutSpec):
    doc = "zero whole channels of a map (C, H, W) with probability p in training"

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        ctx.need_rank(shape, 3, "a map (C, H, W)", "use dropout for vectors")
        return shape
