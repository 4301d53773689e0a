"""Typed configuration trees: dataclasses filled from YAML/JSON mappings with clear errors.

``from_mapping(Cls, data)`` checks every key (an unknown one is reported with the
closest known name), coerces scalars to the declared type and recurses into nested
dataclasses. ``apply_override(tree, "train.epochs=30")`` edits a raw mapping the way
``--set`` does on the command line.

Numeric limits are declared once, on the field: ``rate: float = setting(0.1, minimum=0.0,
below=1.0)`` (the metadata keys ``minimum``/``above``/``maximum``/``below`` are the ones layer
options use). ``from_mapping`` checks them on every number it reads (each item of a list or
mapping value too); ``limits_schema`` writes them as JSON-schema keywords. Every float read is
also refused when it is NaN or infinite, and a float is never accepted where an int is declared.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import types
import typing
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from layerlab.core.errors import ConfigError

T = TypeVar("T")

LIMIT_KEYS = ("minimum", "above", "maximum", "below")
INT_RANGE = 2**63 - 1  # what a torch int64 holds; larger ints are refused everywhere


def limits(
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
) -> dict[str, float]:
    """Field metadata declaring numeric limits: ``minimum``/``maximum`` inclusive, ``above``/``below`` exclusive."""
    given = {"minimum": minimum, "above": above, "maximum": maximum, "below": below}
    return {k: v for k, v in given.items() if v is not None}


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str = "",
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A config dataclass field carrying its help text and numeric limits (checked by ``from_mapping``)."""
    metadata: dict[str, Any] = {
        "help": help,
        **limits(minimum=minimum, above=above, maximum=maximum, below=below),
    }
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _num(value: float) -> str:
    """A limit as written in a config: 1000000 rather than 1e+06, 0.5 as 0.5."""
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:g}"


def _range_text(meta: typing.Mapping[str, Any]) -> str:
    if "minimum" in meta:
        low = f"[{_num(meta['minimum'])}"
    else:
        low = f"({_num(meta['above'])}" if "above" in meta else "(-inf"
    if "maximum" in meta:
        high = f"{_num(meta['maximum'])}]"
    else:
        high = f"{_num(meta['below'])})" if "below" in meta else "inf)"
    return f"{low}, {high}"


def check_limits(
    value: Any,
    meta: typing.Mapping[str, Any],
    name: str,
    where: str,
    error: type[ConfigError] = ConfigError,
) -> None:
    """Check a number (or each number of a list / mapping value) against the limits in ``meta``.

    Non-numbers (None, 'classes', 'same' ...) pass: the owner checks those itself.
    """
    if not any(k in meta for k in LIMIT_KEYS):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_limits(item, meta, f"{name}[{i}]", where, error)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            check_limits(item, meta, f"{name}.{key}", where, error)
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    low, above = meta.get("minimum"), meta.get("above")
    high, below = meta.get("maximum"), meta.get("below")
    ok = (
        (low is None or value >= low)
        and (above is None or value > above)
        and (high is None or value <= high)
        and (below is None or value < below)
    )
    if ok:
        return
    bounds = [b for b in (low, above, high, below) if b is not None]
    if len(bounds) >= 2:
        raise error(f"{name} must be in {_range_text(meta)}, got {value}", where=where)
    if low is not None:
        raise error(f"{name} must be at least {_num(low)}, got {value}", where=where)
    if above is not None:
        raise error(f"{name} must be above {_num(above)}, got {value}", where=where)
    if high is not None:
        raise error(f"{name} must be at most {_num(high)}, got {value}", where=where)
    raise error(f"{name} must be below {_num(below)}, got {value}", where=where)


def limits_schema(meta: typing.Mapping[str, Any]) -> dict[str, float]:
    """The limits in ``meta`` as JSON-schema keywords (minimum, exclusiveMinimum ...)."""
    names = {
        "minimum": "minimum",
        "above": "exclusiveMinimum",
        "maximum": "maximum",
        "below": "exclusiveMaximum",
    }
    return {names[k]: meta[k] for k in LIMIT_KEYS if k in meta}


def suggest(name: str, known: typing.Iterable[str]) -> str | None:
    """The closest known name to ``name``, or None when nothing is close."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return match[0] if match else None


def unknown_key_error(key: str, known: typing.Iterable[str], where: str) -> ConfigError:
    """A ConfigError for an unknown key, suggesting the closest known one."""
    known = sorted(known)
    close = suggest(key, known)
    hint = f"did you mean '{close}'?" if close else f"known keys: {', '.join(known)}"
    return ConfigError(f"unknown key '{key}'", hint=hint, where=where or "config")


def _join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else str(key)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Coerce ``value`` to ``annotation`` or raise a ConfigError naming ``where``."""
    if annotation is Any:
        return value
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as exc:
                # a mapping's error is the dataclass option's; another value's, a plain option's
                errors.append((dataclasses.is_dataclass(option) != isinstance(value, dict), exc))
        if not errors:
            raise ConfigError("no value allowed here", where=where)
        raise min(errors, key=lambda pair: pair[0])[1]
    if origin is typing.Literal:
        allowed = get_args(annotation)
        if value not in allowed:
            close = suggest(str(value), [str(a) for a in allowed])
            hint = f"did you mean '{close}'?" if close else f"choose one of: {', '.join(map(str, allowed))}"
            raise ConfigError(f"'{value}' is not allowed", hint=hint, where=where)
        return value
    if dataclasses.is_dataclass(annotation):
        return from_mapping(annotation, value, where)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"expected a list, got {type(value).__name__} {value!r}", where=where)
        args = get_args(annotation)
        item_type = args[0] if args else Any
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"expected {len(args)} values, got {len(value)}", where=where)
            return tuple(
                _coerce(v, a, _join(where, i)) for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        items = [_coerce(v, item_type, _join(where, i)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"expected a mapping, got {type(value).__name__} {value!r}", where=where)
        args = get_args(annotation)
        if args:
            return {k: _coerce(v, args[1], _join(where, k)) for k, v in value.items()}
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "yes", "on", "1", "false", "no", "off", "0"}:
            return value.lower() in {"true", "yes", "on", "1"}
        raise ConfigError(f"expected true or false, got {value!r}", where=where)
    if annotation is int:
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = int(value.strip())
        if number is None:  # floats too: 1e9 or 2.0 where an int is declared is refused, not rounded
            raise ConfigError(
                f"expected an integer, got {value!r}", hint="write a whole number, e.g. 10", where=where
            )
        if abs(number) > INT_RANGE:
            raise ConfigError(f"{number} is too large", where=where)
        return number
    if annotation is float:
        number = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value) if abs(value) <= 1e308 else math.inf
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is None:
            raise ConfigError(f"expected a number, got {value!r}", where=where)
        if not math.isfinite(number):
            raise ConfigError(f"expected a finite number, got {value!r}", where=where)
        return number
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"expected a string, got {value!r}", where=where)
    return value


def from_mapping(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, checking keys and types.

    Args:
        cls: a dataclass whose fields all have defaults or are given in ``data``.
        data: a mapping (None means "all defaults").
        where: the dotted path of ``data`` in the whole config, for messages.
    """
    if data is None:
        data = {}
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping, got {type(data).__name__} {data!r}", where=where or "config")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise unknown_key_error(str(key), fields, where)
        kwargs[key] = _coerce(value, hints[key], _join(where, key))
        check_limits(
            kwargs[key], fields[key].metadata, fields[key].metadata.get("key", key), _join(where, key)
        )
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"missing required key '{missing[0]}'", where=where or "config")
    instance = cls(**kwargs)
    validate = getattr(instance, "validate", None)
    if callable(validate):
        validate(where)
    return instance


def to_mapping(instance: Any) -> Any:
    """A dataclass tree as plain dicts/lists (tuples become lists), ready for YAML/JSON."""
    if dataclasses.is_dataclass(instance):
        return {f.name: to_mapping(getattr(instance, f.name)) for f in dataclasses.fields(instance)}
    if isinstance(instance, list | tuple):
        return [to_mapping(v) for v in instance]
    if isinstance(instance, dict):
        return {k: to_mapping(v) for k, v in instance.items()}
    return instance


def flatten(mapping: dict | None, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": 0.1}``: dotted keys, lists kept whole.

    An empty section adds no key, so ``{}`` and a missing section compare equal.
    """
    flat: dict[str, Any] = {}
    for key, value in (mapping or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def apply_override(tree: dict, assignment: str, parse_value: typing.Callable[[str], Any]) -> None:
    """Apply ``key.path=value`` to a raw mapping in place, creating sub-mappings as needed.

    Args:
        tree: the raw config mapping.
        assignment: ``dotted.key=value``, as given to ``--set``.
        parse_value: turns the text after ``=`` into a value (YAML scalar parsing, usually).
    """
    if "=" not in assignment:
        raise ConfigError(
            f"'{assignment}' is not an assignment", hint="write --set key.path=value, e.g. train.epochs=30"
        )
    path, text = assignment.split("=", 1)
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"'{assignment}' names no key", hint="write --set key.path=value")
    node = tree
    for i, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise ConfigError(
                f"cannot set '{path}': '{'.'.join(keys[: i + 1])}' is a value, not a section", where="--set"
            )
        node = child
    node[keys[-1]] = parse_value(text)
