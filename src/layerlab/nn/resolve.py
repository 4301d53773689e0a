"""Turn the ``model`` section of an experiment (a preset with options, or layers) into a checked NetworkSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from layerlab.core.errors import ConfigError, SpecError
from layerlab.core.mappingfile import read_mapping
from layerlab.nn.presets import preset_spec
from layerlab.nn.spec import NetworkSpec, parse_network

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file into a mapping, with errors naming the file (and line).

    Args:
        path: a ``.yaml``, ``.yml`` or ``.json`` file.
    """
    return read_mapping(path, error=SpecError, what="a mapping (input, layers ...)")


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


def network_for_data(model_cfg: Any, data_cfg: Any) -> NetworkSpec | None:
    """The checked network of ``model_cfg`` against the shape ``data_cfg`` gives, before any import.

    The shape and class count come from the config and cheap reads (``config_signature``: image
    size and channels, generator shapes, array headers), so a network that cannot take the data
    fails at once. None when they are only known once the data is read (CSV files); the run
    checks again after importing.

    Args:
        model_cfg: the ``model`` section.
        data_cfg: the ``data`` section (``layerlab.data.config.DataConfig``).
    """
    from layerlab.data.signature import config_signature

    signature = config_signature(data_cfg)
    if signature is None:
        return None
    input_shape, num_classes = signature
    return network_for(model_cfg, input_shape=input_shape, num_classes=num_classes)
