"""The base of every layer spec class, the registry of kinds, and the context shape inference uses."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from layerlab.core.configtree import check_limits, limits
from layerlab.core.errors import ShapeError, SpecError

Shape = tuple[int, ...]
Init = Literal["default", "xavier", "he"]

# Blocks (residual, timedistributed) may nest this many levels deep: shape inference and building recurse per level.
MAX_NESTING = 32
# Upper limits of the options (declared on each option with maximum=, written into the JSON schema).
MAX_WIDTH = 65_536  # features, channels, hidden units
MAX_WINDOW = 1024  # kernel, stride, padding, map sides
MAX_REPEAT = 64  # stacked recurrent layers, dynamic repetitions

# kind name -> spec class; filled by @register_kind in the family modules of layerlab.nn.kinds.
LAYER_KINDS: dict[str, type[LayerSpec]] = {}


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    key: str | None = None,
    minimum: float | None = None,
    below: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    min_items: int | None = None,
    **kw: Any,
) -> Any:
    """A spec option: a dataclass field carrying its help text, spec key and numeric limits.

    ``minimum``/``maximum`` (inclusive) and ``above``/``below`` (exclusive) apply to a number or to
    each number of a list; they are checked when a spec is parsed (``LayerSpec.check_limits``, the
    same ``configtree.check_limits`` config sections use) and written into the JSON schema, so the
    two never disagree. ``min_items`` is the shortest list allowed.
    """
    metadata: dict[str, Any] = {"help": help}
    if key:
        metadata["key"] = key  # the key in YAML when it is not a valid Python name (e.g. 'return')
    metadata.update(limits(minimum=minimum, above=above, maximum=maximum, below=below))
    if min_items is not None:
        metadata["min_items"] = min_items
    if "default_factory" in kw:
        return field(default_factory=kw["default_factory"], metadata=metadata)
    return field(default=default, metadata=metadata)


def register_kind(kind: str):
    """Class decorator: register a spec class under ``kind`` (its ``kind`` class attribute is set)."""

    def decorate(cls: type[LayerSpec]) -> type[LayerSpec]:
        if kind in LAYER_KINDS:
            raise RuntimeError(f"layer kind '{kind}' registered twice")
        cls.kind = kind
        LAYER_KINDS[kind] = cls
        return cls

    return decorate


@dataclass
class Where:
    """Where a layer sits, for messages: its index path (``3`` or ``2.1`` inside a residual) and name."""

    index: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} #{self.index} ({self.name})"


@dataclass
class Counts:
    """What one layer costs: trainable parameters and multiply-adds per example."""

    params: int = 0
    macs: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class LayerSpec:
    """One layer entry of a network spec. Subclasses add their options as dataclass fields."""

    kind: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    nests: ClassVar[bool] = False  # True for blocks whose 'layers' option is a list of layer entries
    name: str = option("", help="unique name; the sub-module name in the built network (default: kind_N)")

    def check_limits(self, where: str) -> None:
        """Check every numeric option against its declared limits (raise SpecError).

        None, 'classes', 'same' ... pass: the kind checks those itself.
        """
        for f in dataclasses.fields(self):
            check_limits(getattr(self, f.name), f.metadata, f.metadata.get("key", f.name), where, SpecError)

    # --- hooks the subclasses override -------------------------------------------------------------
    def check(self, where: str) -> None:
        """Check option values that need no shapes (raise SpecError naming ``where``)."""

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        """The shape one example has after this layer, or a ShapeError saying why it cannot work."""
        return shape

    def counts(self, shape: Shape, out: Shape, ctx: ShapeContext) -> Counts:
        """Parameters, multiply-adds and rule-of-thumb warnings for input ``shape`` -> ``out``."""
        return Counts()

    def children(self) -> list[LayerSpec]:
        """Nested layers (a residual or timedistributed block's body); empty for plain layers."""
        return []

    def body_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        """The shape a block's body starts from, given the block's input (blocks only; default: the same)."""
        return shape

    def combine(
        self, shape: Shape, body_out: Shape, body_rows: list, ctx: ShapeContext
    ) -> tuple[Shape, Counts]:
        """A block's output shape and costs from its body's, inferred once by the caller (blocks only).

        Args:
            shape: the block's input shape.
            body_out: the shape the body's last layer gives.
            body_rows: the ``LayerRow`` of each top-level layer of the body.
        """
        raise NotImplementedError(f"{self.kind} has no nested layers")

    # --- shared behaviour --------------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        """Every option as its YAML key -> value (children as mappings), without kind and name."""
        values = {}
        for f in dataclasses.fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            if isinstance(value, list) and value and isinstance(value[0], LayerSpec):
                value = [child.to_dict() for child in value]
            elif isinstance(value, tuple):
                value = list(value)
            values[f.metadata.get("key", f.name)] = value
        return values

    def to_dict(self) -> dict[str, Any]:
        """The layer as a plain mapping: kind, name, then every option."""
        return {"kind": self.kind, "name": self.name, **self.options()}


class ShapeContext:
    """What shape inference needs besides the incoming shape: where the layer is, the class count."""

    def __init__(self, where: Where, num_classes: int | None):
        self.where = where
        self.num_classes = num_classes

    def fail(self, shape: Shape, problem: str, fix: str) -> ShapeError:
        """A ShapeError: ``conv2d #3 (conv2): input 1x5x5, <problem>; <fix>``."""
        return ShapeError(f"input {format_shape(shape)}, {problem}", hint=fix, where=str(self.where))

    def size(self, value: int | str) -> int:
        """A layer width: an integer, or 'classes' (the number of classes of the data)."""
        if value == "classes":
            if self.num_classes is None:
                raise SpecError(
                    "'classes' is used but the number of classes is unknown",
                    hint="give classes: N in the spec, or --classes N",
                    where=str(self.where),
                )
            return self.num_classes
        return int(value)

    def need_rank(self, shape: Shape, rank: int, what: str, fix: str) -> None:
        """Raise a ShapeError unless ``shape`` has ``rank`` dimensions."""
        if len(shape) != rank:
            raise self.fail(shape, f"{self.where.kind} needs {what}", fix)


def format_shape(shape: Shape) -> str:
    """(1, 28, 28) -> '1x28x28'; (10,) -> '10'."""
    return "x".join(str(d) for d in shape) if shape else "()"


def numel(shape: Shape) -> int:
    """The number of values in one example of ``shape``."""
    return math.prod(shape)
