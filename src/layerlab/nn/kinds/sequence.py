"""Sequence kinds: timedistributed, a sub-list of layers applied to every step of a sequence.

For frames (T, C, H, W) its body is a per-frame convnet: each frame (C, H, W) goes through the same
layers (the time axis folded into the batch), giving (T, *body output). A body that ends with
``flatten`` gives (T, F): one code per frame, which ``lstm`` / ``gru`` read as a sequence (Karpathy's
CNN -> RNN). Weights are shared across steps, so parameters count once and multiply-adds T times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from layerlab.core.errors import SpecError
from layerlab.nn import shapes
from layerlab.nn.kinds.base import Counts, LayerSpec, Shape, ShapeContext, option, register_kind

SEQUENCE_FIX = (
    "give a sequence (T, ...): frames (T, C, H, W) or steps (T, F), e.g. a video source "
    "(data.source: repetition_counting)"
)


@register_kind("timedistributed")
@dataclass(kw_only=True)
class TimeDistributedSpec(LayerSpec):
    doc = (
        "apply the sub-list 'layers' to every step of a sequence (T, ...) with shared weights: frames "
        "(T, C, H, W) through a convnet give (T, F) when the sub-list ends with flatten, ready for lstm/gru"
    )
    nests = True
    layers: list[Any] = option(help="the per-step body: a list of layer entries", min_items=1)

    def check(self, where: str) -> None:
        if not self.layers:
            raise SpecError(
                "a timedistributed layer needs at least one layer in 'layers'",
                hint="e.g. layers: [{kind: conv2d, out: 8}, {kind: relu}, {kind: flatten}]",
                where=where,
            )

    def children(self) -> list[LayerSpec]:
        return list(self.layers)

    def body_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        if len(shape) < 2:
            raise ctx.fail(
                shape, "timedistributed needs a sequence (T, ...) with a time axis first", SEQUENCE_FIX
            )
        return shape[1:]

    def combine(
        self, shape: Shape, body_out: Shape, body_rows: list, ctx: ShapeContext
    ) -> tuple[Shape, Counts]:
        steps = shape[0]
        params = sum(row.params for row in body_rows)
        macs = steps * sum(row.macs for row in body_rows)
        return (steps, *body_out), Counts(params=params, macs=macs)

    def _infer(self, shape: Shape, ctx: ShapeContext) -> tuple[Shape, Counts]:
        body_in = self.body_shape(shape, ctx)
        out, rows = shapes.infer_sequence(self.layers, body_in, ctx.num_classes, f"{ctx.where.index}.", 1)
        return self.combine(shape, out, [row for row in rows if row.depth == 1], ctx)

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        return self._infer(shape, ctx)[0]

    def counts(self, shape: Shape, out: Shape, ctx: ShapeContext) -> Counts:
        return self._infer(shape, ctx)[1]
