"""Turn the ``model`` section of an experiment (a preset with options, or layers) into a checked NetworkSpec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from layerlab.core.errors import ConfigError, SpecError
from layerlab.nn.presets import preset_spec
from layerlab.nn.spec import NetworkSpec, parse_network

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file into a mapping, with errors naming the file (and line).

    Args:
        path: a ``.yaml``, ``.yml`` or ``.json`` file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"file '{path}' does not exist", hint="check the path")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SpecError(f"cannot parse: {exc}".splitlines()[0], where=where) from None
    if not isinstance(data, dict):
        raise SpecError("the top level must be a mapping (input, layers ...)", where=str(path))
    return data


def network_for(model_cfg: Any, *, input_shape: tuple[int, ...], num_classes: int | None) -> NetworkSpec:
    """The checked network of a ``model`` section: its ``layers``, or its ``preset`` with ``options``.

    Args:
        model_cfg: ``layerlab.train.config.ModelConfig`` (or anything with ``preset``, ``options``, ``layers``).
            ``preset`` may also name a spec file (``.yaml``/``.json``).
        input_shape: the shape of one example, from the data.
        num_classes: the number of classes of the data.
    """
    layers = getattr(model_cfg, "layers", None)
    preset = getattr(model_cfg, "preset", None)
    options = dict(getattr(model_cfg, "options", None) or {})
    if layers:
        if options:
            raise ConfigError(
                "options apply to presets only",
                hint="put the values in the layers, or use a preset",
                where="model.options",
            )
        mapping: dict[str, Any] = {"layers": list(layers)}
    elif preset and preset.endswith(SPEC_SUFFIXES):
        if options:
            raise ConfigError("options apply to presets only, not to a spec file", where="model.options")
        mapping = load_spec_file(preset)
    else:
        mapping = preset_spec(preset or "mlp", input_shape=input_shape, num_classes=num_classes, **options)
    return parse_network(mapping, input_shape=input_shape, num_classes=num_classes)
