"""Writes on networks: validate the spec with the engine, then save it with its shape table."""

from __future__ import annotations

from django.db import transaction

from layerlab.apps.networks.models import Network
from layerlab.apps.projects.models import Project
from layerlab.core.errors import LayerlabError


class NetworkError(LayerlabError):
    """A network rule is broken (duplicate name)."""

    kind = "network_error"


def network_summary(spec: dict) -> dict:
    """The engine's verdict on a spec: the shape/parameter table and warnings, or a SpecError/ShapeError."""
    from layerlab.nn.shapes import summarize
    from layerlab.nn.spec import parse_network

    network = parse_network(spec)
    if network.input_shape is None:
        # Without an input shape the layers are checked, the shapes only when a run supplies the data.
        return {
            "rows": [],
            "warnings": ["no input shape given: shapes are checked when a run supplies the data"],
        }
    return summarize(network).to_dict()


def network_preview(*, data: dict, model: dict) -> dict:
    """The shape table of a ``model`` section on a ``data`` section, plus the layers as written.

    Used by the new-run page's as-you-type check; raises the engine's ConfigError/SpecError/ShapeError.
    ``layers`` holds a preset's layers too, so that a page can offer them for editing.

    Args:
        data: the experiment's data section (its input shape and class count come from the engine).
        model: the experiment's model section (a preset with options, or layers).
    """
    from layerlab.core.errors import ConfigError
    from layerlab.data.prepare import input_signature
    from layerlab.nn.presets import preset_spec
    from layerlab.nn.resolve import SPEC_SUFFIXES, network_for
    from layerlab.nn.shapes import summarize
    from layerlab.train.config import experiment_from_mapping

    cfg = experiment_from_mapping({"data": data, "model": model})
    if cfg.model.preset and cfg.model.preset.lower().endswith(SPEC_SUFFIXES):  # never a file of the server
        raise ConfigError(
            "model.preset names a file; name a preset or write the layers", where="model.preset"
        )
    try:
        input_shape, classes = input_signature(cfg.data)
    except LayerlabError as exc:  # the engine names the folder by its server path: the page says "the data"
        if cfg.data.path:
            for name in ("message", "hint", "where"):
                if getattr(exc, name):
                    setattr(exc, name, getattr(exc, name).replace(str(cfg.data.path), "the data"))
            exc.args = (exc.one_line(),)
        raise
    table = summarize(network_for(cfg.model, input_shape=input_shape, num_classes=classes)).to_dict()
    if cfg.model.layers:
        table["layers"] = list(cfg.model.layers)
    else:
        options = dict(cfg.model.options or {})
        table["layers"] = preset_spec(
            cfg.model.preset, input_shape=input_shape, num_classes=classes, **options
        )["layers"]
    return table


def preset_names() -> list[str]:
    """The names of the engine's network presets."""
    from layerlab.nn.presets import PRESETS

    return list(PRESETS)


@transaction.atomic
def network_create(*, project: Project, user, name: str, spec: dict, description: str = "") -> Network:
    """Validate ``spec`` with the engine and save it (400 with the engine's message when invalid)."""
    if Network.objects.filter(project=project, name=name).exists():
        raise NetworkError(f"project '{project.name}' already has a network named '{name}'", where="name")
    summary = network_summary(spec)
    return Network.objects.create(
        project=project, name=name, spec=spec, summary=summary, description=description, created_by=user
    )


@transaction.atomic
def network_update(
    *, network: Network, name: str | None = None, spec: dict | None = None, description: str | None = None
) -> Network:
    """Rename, re-describe or replace the spec (validated again)."""
    if name is not None and name != network.name:
        if Network.objects.filter(project=network.project, name=name).exclude(id=network.id).exists():
            raise NetworkError(
                f"project '{network.project.name}' already has a network named '{name}'", where="name"
            )
        network.name = name
    if spec is not None:
        network.summary = network_summary(spec)
        network.spec = spec
    if description is not None:
        network.description = description
    network.save()
    return network


@transaction.atomic
def network_delete(*, network: Network) -> None:
    network.delete()
