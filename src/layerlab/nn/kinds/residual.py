"""The residual kind: a block whose body's output is added to its input (projected when shapes differ)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from layerlab.core.errors import SpecError
from layerlab.nn import shapes
from layerlab.nn.kinds.base import Counts, LayerSpec, Shape, ShapeContext, format_shape, option, register_kind

PROJECTION_NAME = "projection"  # the projection's sub-module name inside the block


def projection_for(shape: Shape, out: Shape) -> tuple[str, int] | None:
    """How to bring the input to the body's output shape: None (same shape), ('conv', stride) or ('linear', 0).

    A map (C, H, W) uses a 1x1 convolution whose stride S gives (H - 1)//S + 1 == H'; a vector or a
    sequence uses a linear layer over the last axis. Returns ('none', 0) when nothing fits.
    """
    if shape == out:
        return None
    if len(shape) == 3 and len(out) == 3:
        for stride in range(1, max(shape[1:]) + 1):
            if all(
                (size - 1) // stride + 1 == target for size, target in zip(shape[1:], out[1:], strict=True)
            ):
                return ("conv", stride)
        return ("none", 0)
    if len(shape) == len(out) and shape[:-1] == out[:-1]:
        return ("linear", 0)
    return ("none", 0)


@register_kind("residual")
@dataclass(kw_only=True)
class ResidualSpec(LayerSpec):
    doc = (
        "a block: output = body(x) + x, where the body is the sub-list 'layers'; when the body changes "
        "the shape, x goes through a projection (1x1 conv with a stride for maps, linear for vectors)"
    )
    nests = True
    layers: list[Any] = option(help="the body: a list of layer entries", min_items=1)

    def check(self, where: str) -> None:
        if not self.layers:
            raise SpecError("a residual block needs at least one layer in 'layers'", where=where)

    def children(self) -> list[LayerSpec]:
        return list(self.layers)

    def combine(
        self, shape: Shape, body_out: Shape, body_rows: list, ctx: ShapeContext
    ) -> tuple[Shape, Counts]:
        projection = projection_for(shape, body_out)
        if projection == ("none", 0):
            raise ctx.fail(
                shape,
                f"the body gives {format_shape(body_out)}, which no 1x1 conv or linear projection reaches",
                "keep the body's rank and make its size a stride of the input's (or the same shape)",
            )
        out = body_out
        params = sum(row.params for row in body_rows)
        macs = sum(row.macs for row in body_rows)
        if projection is not None:
            weights = shape[0] * out[0] if projection[0] == "conv" else shape[-1] * out[-1]
            params += weights + out[0 if projection[0] == "conv" else -1]
            positions = out[1] * out[2] if projection[0] == "conv" else (out[0] if len(out) == 2 else 1)
            macs += weights * positions
        return out, Counts(params=params, macs=macs)

    def _infer(self, shape: Shape, ctx: ShapeContext) -> tuple[Shape, Counts]:
        # One walk of the body (shapes.infer_sequence, depth 1) gives both the shape and the costs.
        out, rows = shapes.infer_sequence(self.layers, shape, ctx.num_classes, f"{ctx.where.index}.", 1)
        return self.combine(shape, out, [row for row in rows if row.depth == 1], ctx)

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        return self._infer(shape, ctx)[0]

    def counts(self, shape: Shape, out: Shape, ctx: ShapeContext) -> Counts:
        return self._infer(shape, ctx)[1]
