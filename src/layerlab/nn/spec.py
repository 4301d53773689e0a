"""The network spec: an input shape plus a list of layer entries, parsed, checked and described by a JSON schema.

A layer kind is a spec class registered by name in ``LAYER_KINDS`` (the family modules of
``layerlab.nn.kinds``); its builder lives in ``layerlab.nn.layers``. The JSON schema is generated
from the registry. No torch here.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from layerlab.core.configtree import from_mapping, limits_schema, suggest
from layerlab.core.errors import ConfigError, ShapeError, SpecError

# Importing the family modules fills the registry.
from layerlab.nn.kinds import (  # noqa: F401
    activation,
    conv,
    decoder,
    dense,
    norm,
    pool,
    recurrent,
    reshape,
    residual,
    sequence,
)
from layerlab.nn.kinds.activation import REFUSED_KINDS
from layerlab.nn.kinds.base import LAYER_KINDS, MAX_NESTING, LayerSpec, Shape
from layerlab.nn.kinds.residual import PROJECTION_NAME
from layerlab.nn.shapes import infer_sequence

TOP_LEVEL_KEYS = ("input", "classes", "layers")
MAX_INPUT_SIZE = 1_000_000  # one axis of the input shape
MAX_CLASSES = 100_000
MAX_PARAMETERS = 500_000_000  # 2 GB of float32 weights, before gradients and optimizer state
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

__all__ = [
    "LAYER_KINDS",
    "LayerSpec",
    "NetworkSpec",
    "ShapeError",
    "SpecError",
    "network_json_schema",
    "parse_network",
]


@dataclass
class NetworkSpec:
    """A checked network: the input shape of one example, the class count, and the layers (named)."""

    input_shape: tuple[int, ...] | None
    layers: list[LayerSpec]
    num_classes: int | None = None

    def walk(self) -> typing.Iterator[LayerSpec]:
        """Every layer, depth first (a residual block, then its body)."""
        stack = list(reversed(self.layers))
        while stack:
            layer = stack.pop()
            yield layer
            stack.extend(reversed(layer.children()))

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain mapping (every option explicit), ready for YAML/JSON and ``parse_network``."""
        data: dict[str, Any] = {}
        if self.input_shape is not None:
            data["input"] = list(self.input_shape)
        if self.num_classes is not None:
            data["classes"] = self.num_classes
        data["layers"] = [layer.to_dict() for layer in self.layers]
        return data


def _option_keys(cls: type[LayerSpec]) -> dict[str, str]:
    """YAML key -> dataclass field name for every option of ``cls`` (plus 'name')."""
    return {f.metadata.get("key", f.name): f.name for f in dataclasses.fields(cls) if f.init}


def _parse_layer(entry: Any, where: str, depth: int = 0) -> LayerSpec:
    if not isinstance(entry, dict):
        raise SpecError(f"a layer must be a mapping, got {entry!r}", hint="e.g. {kind: relu}", where=where)
    kind = entry.get("kind")
    if kind is None:
        raise SpecError("the layer has no kind", hint="e.g. {kind: linear, out: 10}", where=where)
    kind = str(kind)
    if kind in REFUSED_KINDS:
        reason, fix = REFUSED_KINDS[kind]
        raise SpecError(f"{kind} is refused: {reason}", hint=fix, where=where)
    cls = LAYER_KINDS.get(kind)
    if cls is None:
        close = suggest(kind, LAYER_KINDS)
        hint = f"did you mean '{close}'?" if close else f"known kinds: {', '.join(sorted(LAYER_KINDS))}"
        raise SpecError(f"unknown layer kind '{kind}'", hint=hint, where=where)
    where = f"{where} ({kind})"
    keys = _option_keys(cls)
    data = {}
    for key, value in entry.items():
        if key == "kind":
            continue
        if key not in keys:
            close = suggest(str(key), keys)
            hint = f"did you mean '{close}'?" if close else f"{kind} takes: {', '.join(sorted(keys))}"
            raise SpecError(f"unknown option '{key}' for {kind}", hint=hint, where=where)
        data[keys[key]] = value
    if cls.nests and isinstance(data.get("layers"), list):  # a block: residual, timedistributed
        if (
            depth + 1 > MAX_NESTING
        ):  # before recursing: a deeply nested document never reaches the stack limit
            raise SpecError(
                f"blocks (residual, timedistributed) nest more than {MAX_NESTING} levels deep",
                hint="flatten the blocks into a sequence of blocks",
                where=where,
            )
        data["layers"] = [
            _parse_layer(child, f"{where}.layers[{i}]", depth + 1) for i, child in enumerate(data["layers"])
        ]
    try:
        layer = from_mapping(cls, data, where)
    except SpecError:
        raise
    except ConfigError as exc:
        raise SpecError(exc.message, hint=exc.hint, where=exc.where) from None
    if layer.name and not NAME_PATTERN.match(layer.name):
        raise SpecError(
            f"name '{layer.name}' is not usable as a module name",
            hint="use letters, digits and _, starting with a letter (e.g. conv1)",
            where=where,
        )
    layer.check_limits(where)
    layer.check(where)
    return layer


def _assign_names(layers: list[LayerSpec]) -> None:
    """Name unnamed layers kind_N (N counts that kind in depth-first order) and check names are unique."""
    ordinals: dict[str, int] = {}
    seen: dict[str, str] = {}

    def visit(items: list[LayerSpec], prefix: str, inside_block: bool) -> None:
        for i, layer in enumerate(items):
            ordinals[layer.kind] = ordinals.get(layer.kind, 0) + 1
            layer.name = layer.name or f"{layer.kind}_{ordinals[layer.kind]}"
            index = f"{prefix}{i}"
            if layer.name in seen:
                raise SpecError(
                    f"name '{layer.name}' is used twice (layers #{seen[layer.name]} and #{index})",
                    hint="give every layer a unique name",
                    where=f"{layer.kind} #{index}",
                )
            if inside_block and layer.name == PROJECTION_NAME:
                raise SpecError(
                    f"'{PROJECTION_NAME}' is reserved inside a residual block",
                    hint="rename the layer",
                    where=f"{layer.kind} #{index}",
                )
            seen[layer.name] = index
            visit(layer.children(), f"{index}.", layer.kind == "residual")  # its projection attribute

    visit(layers, "", False)


def _parse_shape(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [part for part in re.split(r"[,x ]+", value.strip()) if part]
    if not isinstance(value, list | tuple) or not value:
        raise SpecError(f"expected a shape like [1, 64, 64], got {value!r}", where=where)
    try:
        shape = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise SpecError(f"expected whole numbers in the shape, got {value!r}", where=where) from None
    if min(shape) < 1:
        raise SpecError(f"every size must be at least 1, got {list(shape)}", where=where)
    if max(shape) > MAX_INPUT_SIZE:
        raise SpecError(f"every size must be at most {MAX_INPUT_SIZE:,}, got {list(shape)}", where=where)
    return shape


def parse_network(
    mapping: dict[str, Any], *, input_shape: Shape | list[int] | None = None, num_classes: int | None = None
) -> NetworkSpec:
    """Parse and check a network spec mapping; shapes are checked when the input shape is known.

    Args:
        mapping: ``{input: [C, H, W], classes: N, layers: [...]}`` (input and classes optional).
        input_shape: the data's shape of one example; must agree with ``input`` when both are given.
        num_classes: the data's class count (what ``out: classes`` means); must agree with ``classes``.

    Raises:
        SpecError: unknown kind or option, bad value, duplicate name (with the closest name suggested).
        ShapeError: the layers' shapes do not fit together (layer, incoming shape, arithmetic, fix).
    """
    if not isinstance(mapping, dict):
        raise SpecError(
            f"a network spec must be a mapping, got {type(mapping).__name__}", hint="give layers: [...]"
        )
    for key in mapping:
        if key not in TOP_LEVEL_KEYS:
            close = suggest(str(key), TOP_LEVEL_KEYS)
            hint = f"did you mean '{close}'?" if close else "a spec has input, classes and layers"
            raise SpecError(f"unknown key '{key}'", hint=hint, where="spec")
    layers_value = mapping.get("layers")
    if not isinstance(layers_value, list) or not layers_value:
        raise SpecError(
            "the spec has no layers", hint="give layers: [{kind: linear, out: classes}]", where="spec"
        )

    shape = _parse_shape(mapping["input"], "spec.input") if mapping.get("input") is not None else None
    if input_shape is not None:
        given = _parse_shape(list(input_shape), "input_shape")
        if shape is not None and shape != given:
            raise ShapeError(
                f"the spec says input {list(shape)} but the data gives {list(given)}",
                hint="remove input: from the spec (the data supplies it) or fix it",
                where="spec.input",
            )
        shape = given
    classes = mapping.get("classes")
    if classes is not None and (
        isinstance(classes, bool) or not isinstance(classes, int) or not 1 <= classes <= MAX_CLASSES
    ):
        raise SpecError(
            f"classes must be a whole number in [1, {MAX_CLASSES:,}], got {classes!r}", where="spec.classes"
        )
    if num_classes is not None:
        if classes is not None and classes != num_classes:
            raise SpecError(
                f"the spec says classes {classes} but the data has {num_classes}",
                hint="remove classes: from the spec (the data supplies it) or fix it",
                where="spec.classes",
            )
        classes = num_classes

    layers = [_parse_layer(entry, f"layers[{i}]") for i, entry in enumerate(layers_value)]
    _assign_names(layers)
    spec = NetworkSpec(input_shape=shape, layers=layers, num_classes=classes)
    if shape is not None:
        _, rows = infer_sequence(
            layers, shape, classes
        )  # raises ShapeError / SpecError where layers do not fit
        total = sum(row.params for row in rows if row.depth == 0)
        if total > MAX_PARAMETERS:
            biggest = max((row for row in rows if row.depth == 0), key=lambda row: row.params)
            raise SpecError(
                f"the network has {total:,} parameters, above the limit of {MAX_PARAMETERS:,} "
                f"({biggest.name} holds {biggest.params:,})",
                hint="use fewer units or channels, or pool before the fully-connected layers",
                where="spec.layers",
            )
    return spec


# --- JSON schema, generated from the registry ---------------------------------------------------------

LAYER_REF = {"$ref": "#/$defs/layer"}


def _type_schema(annotation: Any) -> dict[str, Any]:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        schemas = [_type_schema(a) for a in options]
        if type(None) in get_args(annotation):
            schemas.append({"type": "null"})
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    if origin is Literal:
        return {"enum": list(get_args(annotation))}
    if origin in (list, tuple):
        args = get_args(annotation)
        item = args[0] if args else Any
        return {"type": "array", "items": LAYER_REF if item is Any else _type_schema(item)}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if annotation in simple:
        return {"type": simple[annotation]}
    return {}


def _kind_schema(cls: type[LayerSpec]) -> dict[str, Any]:
    hints = get_type_hints(cls)
    properties: dict[str, Any] = {"kind": {"const": cls.kind}}
    required = ["kind"]
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key = f.metadata.get("key", f.name)
        schema = {**_type_schema(hints[f.name]), "description": f.metadata.get("help", "")}
        limits = limits_schema(f.metadata)  # numbers only: 'classes' or 'same' pass
        if schema.get("type") == "array" and limits:
            schema["items"] = {**schema["items"], **limits}
        else:
            schema.update(limits)
        if schema.get("type") == "number" and ("minimum" in f.metadata or "above" in f.metadata):
            # NaN passes every comparison keyword; "not below the minimum" refuses it as the parser does.
            low = {"exclusiveMaximum": f.metadata["minimum"]} if "minimum" in f.metadata else None
            schema["not"] = low or {"maximum": f.metadata["above"]}
        if "min_items" in f.metadata:
            schema["minItems"] = f.metadata["min_items"]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(key)
        elif f.default is not dataclasses.MISSING and f.name != "name":
            schema["default"] = f.default
        properties[key] = schema
    return {
        "type": "object",
        "description": cls.doc,
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def network_json_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of a network spec, one definition per registered kind."""
    kinds = sorted(LAYER_KINDS)
    defs: dict[str, Any] = {kind: _kind_schema(LAYER_KINDS[kind]) for kind in kinds}
    defs["layer"] = {"oneOf": [{"$ref": f"#/$defs/{kind}"} for kind in kinds]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "layerlab network spec",
        "type": "object",
        "properties": {
            "input": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "integer", "minimum": 1, "maximum": MAX_INPUT_SIZE},
                "description": "shape of one example: [F], [T, F] or [C, H, W]; the data supplies it when absent",
            },
            "classes": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_CLASSES,
                "description": "what out: classes means",
            },
            "layers": {"type": "array", "items": LAYER_REF, "minItems": 1},
        },
        "required": ["layers"],
        "additionalProperties": False,
        "$defs": defs,
    }
