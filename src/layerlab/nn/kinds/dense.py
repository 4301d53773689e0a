"""Fully-connected kinds: linear, and dynamic (a weight-shared linear layer repeated a random number of times)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from layerlab.core.errors import SpecError
from layerlab.nn.kinds.base import (
    MAX_REPEAT,
    MAX_WIDTH,
    Counts,
    Init,
    LayerSpec,
    Shape,
    ShapeContext,
    option,
    register_kind,
)

FLATTEN_FIX = "add {kind: flatten} or {kind: global_avgpool} before it"


@register_kind("linear")
@dataclass(kw_only=True)
class LinearSpec(LayerSpec):
    doc = "fully-connected layer y = Wx + b over the last axis of a vector (F,) or sequence (T, F)"
    out: int | Literal["classes"] = option(
        help="output features; 'classes' means the number of classes", minimum=1, maximum=MAX_WIDTH
    )
    bias: bool = option(True, help="learn a bias")
    init: Init = option("default", help="default (PyTorch's), xavier (randn/sqrt(n)) or he (randn*sqrt(2/n))")

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        if len(shape) not in (1, 2):
            raise ctx.fail(shape, "linear needs a vector (F,) or a sequence (T, F)", FLATTEN_FIX)
        return (*shape[:-1], ctx.size(self.out))

    def counts(self, shape: Shape, out: Shape, ctx: ShapeContext) -> Counts:
        weights = shape[-1] * out[-1]
        return Counts(params=weights + (out[-1] if self.bias else 0), macs=math.prod(shape[:-1]) * weights)


@register_kind("dynamic")
@dataclass(kw_only=True)
class DynamicSpec(LayerSpec):
    doc = (
        "one weight-shared hidden linear layer (F -> F, then the activation) applied a random number of "
        "times in [min, max] per training forward pass (drawn with torch.randint from torch's global RNG), "
        "and eval_depth times in evaluation (default: max), as in PyTorch's DynamicNet example"
    )
    min: int = option(0, help="fewest repetitions in training", minimum=0, maximum=MAX_REPEAT)
    max: int = option(3, help="most repetitions in training", minimum=0, maximum=MAX_REPEAT)
    eval_depth: int | None = option(
        None, help="repetitions in evaluation (default: max)", minimum=0, maximum=MAX_REPEAT
    )
    activation: Literal["relu", "tanh", "none"] = option("relu", help="applied after every repetition")
    init: Init = option("default", help="default, xavier or he")

    def check(self, where: str) -> None:
        if self.min < 0 or self.max < self.min:
            raise SpecError(
                f"need 0 <= min <= max, got min={self.min}, max={self.max}",
                hint="e.g. min: 0, max: 3",
                where=where,
            )
        if self.eval_depth is not None and self.eval_depth < 0:
            raise SpecError(f"eval_depth must be at least 0, got {self.eval_depth}", where=where)

    @property
    def depth_at_eval(self) -> int:
        return self.max if self.eval_depth is None else self.eval_depth

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        if len(shape) != 1:
            raise ctx.fail(shape, "dynamic needs a vector (F,)", FLATTEN_FIX)
        return shape

    def counts(self, shape: Shape, out: Shape, ctx: ShapeContext) -> Counts:
        features = shape[0]
        return Counts(params=features * features + features, macs=self.depth_at_eval * features * features)
