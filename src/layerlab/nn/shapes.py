"""Shape, parameter and multiply-add arithmetic of a network spec, with CS231n rule-of-thumb warnings.

Nothing here imports torch: a spec is checked and costed before anything is built. The output
size of a window (convolution or pooling) along one axis is (W - F + 2P)/S + 1 (CS231n); it
must be at least 1, and a fraction warns (torch floors it, dropping the last row or column): the
canonical ResNet downsampling conv, 3x3 with stride 2 and padding 1 on an even size, is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from layerlab.core.errors import ShapeError, SpecError
from layerlab.nn.kinds.base import (
    MAX_NESTING,
    Counts,
    LayerSpec,
    Shape,
    ShapeContext,
    Where,
    format_shape,
)

if TYPE_CHECKING:
    from layerlab.nn.spec import NetworkSpec

# A fully-connected layer holding more than this share of a conv net's parameters earns a warning.
FC_SHARE_WARNING = 0.5


def _window_fix(size: int, kernel: int, stride: int, padding: int, label: str) -> str:
    """Suggest a padding, a kernel or a stride that makes (W - F + 2P)/S + 1 a whole number >= 1."""
    fixes = []
    for p in range(padding + 1, padding + kernel + stride + 1):
        if size - kernel + 2 * p >= 0 and (size - kernel + 2 * p) % stride == 0:
            fixes.append(f"padding={p}")
            break
    for f in range(kernel - 1, 0, -1):
        if size - f + 2 * padding >= 0 and (size - f + 2 * padding) % stride == 0:
            fixes.append(f"kernel={f}")
            break
    if stride > 1 and size - kernel + 2 * padding >= 0:
        fixes.append("stride=1")
    text = "use " + " or ".join(fixes) if fixes else "use a smaller kernel or more padding"
    if stride == 1 and kernel % 2 == 1 and (kernel - 1) // 2 != padding:
        text += f" (padding={(kernel - 1) // 2} keeps {label})"
    return text


def window_output(
    shape: Shape, size: int, kernel: int, stride: int, padding: int, ctx: ShapeContext, *, strict: bool
) -> tuple[int, str | None]:
    """Output size along one axis, (W - F + 2P)/S + 1, and a warning when pooling drops a remainder.

    Args:
        shape: the layer's whole input shape (for the message).
        size, kernel, stride, padding: W, F, S and P along this axis.
        ctx: the layer's context (for the message).
        strict: True for convolutions, where a fraction is an error; False for pooling (a warning).
    """
    span = size - kernel + 2 * padding
    label = f"{shape[1]}x{shape[2]}" if len(shape) == 3 else str(size)
    arithmetic = f"({size} - {kernel} + 2*{padding})/{stride} + 1"
    if span < 0:
        value = span / stride + 1
        shown = int(value) if float(value).is_integer() else round(value, 2)
        raise ctx.fail(
            shape,
            f"kernel {kernel}: {arithmetic} = {shown} < 1",
            _window_fix(size, kernel, stride, padding, label),
        )
    if span % stride:
        value = round(span / stride + 1, 2)
        floored = span // stride + 1
        if strict:
            raise ctx.fail(
                shape,
                f"kernel {kernel}, stride {stride}: {arithmetic} = {value} is not an integer",
                _window_fix(size, kernel, stride, padding, label),
            )
        return (
            floored,
            f"{arithmetic} = {value}: torch floors it to {floored}, "
            f"the last {span % stride} row(s)/column(s) are dropped",
        )
    return span // stride + 1, None


@dataclass
class LayerRow:
    """One line of the summary table."""

    index: str
    name: str
    kind: str
    input_shape: Shape
    output_shape: Shape
    params: int
    macs: int
    warnings: list[str] = field(default_factory=list)
    depth: int = 0  # nesting level (1 inside a residual block)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "params": self.params,
            "macs": self.macs,
            "warnings": list(self.warnings),
            "depth": self.depth,
        }


@dataclass
class NetworkSummary:
    """Every layer's shapes and costs, the totals, and the rule-of-thumb warnings."""

    input_shape: Shape
    rows: list[LayerRow]
    total_params: int
    total_macs: int
    output_shape: Shape
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "total_params": self.total_params,
            "total_macs": self.total_macs,
            "rows": [row.to_dict() for row in self.rows],
            "warnings": list(self.warnings),
        }


def layer_where(layer: LayerSpec, index: str) -> Where:
    return Where(index=index, kind=layer.kind, name=layer.name)


def infer_layer(layer: LayerSpec, shape: Shape, index: str, num_classes: int | None) -> tuple[Shape, Counts]:
    """Output shape and costs of one layer given its input shape (ShapeError when it cannot fit)."""
    ctx = ShapeContext(layer_where(layer, index), num_classes)
    out = layer.output_shape(shape, ctx)
    return out, layer.counts(shape, out, ctx)


def infer_sequence(
    layers: list[LayerSpec], shape: Shape, num_classes: int | None, prefix: str = "", depth: int = 0
) -> tuple[Shape, list[LayerRow]]:
    """Walk ``layers`` from ``shape``; rows for every layer (nested ones after their block).

    A block's body is walked exactly once: its rows give the block's shape and costs
    (``LayerSpec.combine``), so the work grows linearly with nesting, not 3^depth.
    """
    rows: list[LayerRow] = []
    for i, layer in enumerate(layers):
        index = f"{prefix}{i}"
        children = layer.children()
        if children:
            check_nesting(depth + 1, index)
            ctx = ShapeContext(layer_where(layer, index), num_classes)
            body_in = layer.body_shape(shape, ctx)
            body_out, inner = infer_sequence(children, body_in, num_classes, f"{index}.", depth + 1)
            out, counts = layer.combine(
                shape, body_out, [row for row in inner if row.depth == depth + 1], ctx
            )
        else:
            out, counts = infer_layer(layer, shape, index, num_classes)
            inner = []
        rows.append(
            LayerRow(
                index, layer.name, layer.kind, shape, out, counts.params, counts.macs, counts.warnings, depth
            )
        )
        rows.extend(inner)
        shape = out
    return shape, rows


def check_nesting(depth: int, index: str) -> None:
    """A SpecError when blocks nest deeper than ``MAX_NESTING`` (``index`` is the innermost block's)."""
    if depth > MAX_NESTING:
        raise SpecError(
            f"blocks nest {depth} levels deep; at most {MAX_NESTING} are allowed",
            hint="flatten the residual blocks into a sequence of blocks",
            where=f"layer #{index}",
        )


def _trailing_halvings(n: int) -> int:
    count = 0
    while n > 0 and n % 2 == 0:
        n //= 2
        count += 1
    return count


def _network_warnings(input_shape: Shape, rows: list[LayerRow], total: int) -> list[str]:
    warnings = []
    kinds = {row.kind for row in rows}
    if len(input_shape) == 3 and kinds & {"conv2d", "coordconv2d", "maxpool2d", "avgpool2d"}:
        height, width = input_shape[1:]
        if min(_trailing_halvings(height), _trailing_halvings(width)) < 2:
            warnings.append(
                f"input {height}x{width} cannot be halved twice exactly; image sizes divisible by 2 many "
                "times (32, 64, 96, 224) pool cleanly"
            )
    if total and kinds & {"conv2d", "coordconv2d"}:
        for row in rows:
            if row.kind == "linear" and row.params > FC_SHARE_WARNING * total:
                warnings.append(
                    f"{row.name} holds {100 * row.params / total:.0f}% of the parameters; pool more (or use "
                    "global_avgpool) before the fully-connected layers"
                )
    return warnings


def summarize(spec: NetworkSpec) -> NetworkSummary:
    """Shapes, parameters (conv weights shared across positions count once), MACs and warnings.

    Args:
        spec: a parsed network spec with a known input shape.
    """
    if spec.input_shape is None:
        raise SpecError(
            "the network has no input shape", hint="give input: [C, H, W] in the spec, or --input"
        )
    output, rows = infer_sequence(spec.layers, tuple(spec.input_shape), spec.num_classes)
    top = [row for row in rows if row.depth == 0]
    total_params = sum(row.params for row in top)
    total_macs = sum(row.macs for row in top)
    warnings = [f"{row.name}: {text}" for row in rows for text in row.warnings]
    warnings += _network_warnings(tuple(spec.input_shape), rows, total_params)
    return NetworkSummary(tuple(spec.input_shape), rows, total_params, total_macs, output, warnings)


__all__ = ["LayerRow", "NetworkSummary", "ShapeError", "format_shape", "summarize", "window_output"]
