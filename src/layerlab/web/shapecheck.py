"""The new-run page's as-you-type check: the data's input shape through the network, as a shape table."""

from __future__ import annotations

from layerlab.apps.datasets.models import Dataset
from layerlab.apps.datasets.selectors import dataset_list_visible
from layerlab.core.errors import ConfigError

BUILTIN = ("spiral", "digits", "not-so-clevr")


def data_choice(*, user, value: str) -> tuple[dict, Dataset | None]:
    """The ``data`` section and saved dataset of a picker value: ``builtin:spiral`` or ``dataset:<id>``.

    Args:
        user: whose datasets may be picked (others are "not found", like the API).
        value: the picker's value.
    """
    kind, _, rest = (value or "").partition(":")
    if kind == "builtin" and rest in BUILTIN:
        return {"source": rest}, None
    if kind == "dataset" and rest.isdigit():
        dataset = dataset_list_visible(user=user).filter(id=int(rest)).first()
        if dataset is not None:
            return dict(dataset.data), dataset
    raise ConfigError(f"dataset '{value}' not found", hint="pick one from the list", where="dataset")


def model_section(*, preset: str = "", spec: dict | None = None) -> dict:
    """The experiment's ``model`` section: the written layers win over the preset."""
    if spec:
        return {"layers": spec["layers"]}
    return {"preset": preset or "mlp"}


def shape_table(*, data: dict, model: dict) -> dict:
    """The engine's summary (rows, totals, warnings, layers) of ``model`` on ``data``; raises its errors.

    Args:
        data: the config's data section.
        model: the config's model section (preset or layers).
    """
    # The engine is imported late: torch is heavy and only this endpoint needs it.
    from layerlab.data.prepare import input_signature
    from layerlab.nn.presets import preset_spec
    from layerlab.nn.resolve import network_for
    from layerlab.nn.shapes import summarize
    from layerlab.train.config import experiment_from_mapping

    cfg = experiment_from_mapping({"data": data, "model": model})
    input_shape, classes = input_signature(cfg.data)
    spec = network_for(cfg.model, input_shape=input_shape, num_classes=classes)
    table = summarize(spec).to_dict()
    # The layers as written, so that the page can offer a preset's layers for editing.
    if cfg.model.layers:
        table["layers"] = list(cfg.model.layers)
    else:
        preset = cfg.model.preset or "mlp"
        options = dict(cfg.model.options or {})
        table["layers"] = preset_spec(preset, input_shape=input_shape, num_classes=classes, **options)[
            "layers"
        ]
    return table


def preset_names() -> list[str]:
    from layerlab.nn.presets import PRESETS

    return list(PRESETS)
