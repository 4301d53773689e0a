"""The lab's resource caps on a run's config, set by administrators (LAYERLAB_MAX_EPOCHS and friends).

The engine bounds what makes sense at all; these bound what one run may ask of a shared lab's
workers: epochs, generated data points, input pixels, network parameters. They are checked when a
run is created (API, dashboard, ``layerlab submit``: all go through ``runs.services.run_create``)
and answer 400 naming the field, its value and the cap.
"""

from __future__ import annotations

from django.conf import settings

from layerlab.core.errors import ConfigError


def cap_error(field: str, value: int, cap: int, setting: str, what: str = "", unit: str = "") -> ConfigError:
    """``field: <value> (<what>) is above this lab's limit of <cap> <unit>; ... raise <setting>``."""
    return ConfigError(
        f"{value:,}{f' ({what})' if what else ''} is above this lab's limit of {cap:,}{f' {unit}' if unit else ''}",
        hint=f"ask for less, or an administrator can raise {setting}",
        where=field,
    )


def config_limits_check(cfg) -> None:
    """Refuse an ``ExperimentConfig`` above the caps on epochs, data points and input pixels.

    Reads nothing from disk (called before the config's paths are checked).
    """
    epochs = int(cfg.train.epochs)
    if epochs > settings.LAYERLAB_MAX_EPOCHS:
        raise cap_error("train.epochs", epochs, settings.LAYERLAB_MAX_EPOCHS, "LAYERLAB_MAX_EPOCHS")
    data = cfg.data
    if data.source == "spiral" and data.points_per_class is not None:
        classes = len(data.class_names) if data.class_names else (data.classes or 3)
        points = int(data.points_per_class) * int(classes)
        if points > settings.LAYERLAB_MAX_DATA_POINTS:
            raise cap_error(
                "data.points_per_class",
                int(data.points_per_class),
                settings.LAYERLAB_MAX_DATA_POINTS,
                "LAYERLAB_MAX_DATA_POINTS",
                f"{points:,} points for {classes} classes",
                "points",
            )
    if data.limit is not None and int(data.limit) > settings.LAYERLAB_MAX_DATA_POINTS:
        raise cap_error(
            "data.limit", int(data.limit), settings.LAYERLAB_MAX_DATA_POINTS, "LAYERLAB_MAX_DATA_POINTS"
        )
    if data.size:
        height, width = (int(n) for n in data.size)
        if height * width > settings.LAYERLAB_MAX_INPUT_PIXELS:
            raise cap_error(
                "data.size",
                height * width,
                settings.LAYERLAB_MAX_INPUT_PIXELS,
                "LAYERLAB_MAX_INPUT_PIXELS",
                f"{height}x{width}",
                "pixels",
            )


def network_limits_check(cfg) -> None:
    """Refuse a network with more parameters than LAYERLAB_MAX_PARAMETERS.

    Only where the input shape is known without reading data (built-in sources, image folders), like
    ``services.network_check``; a network over array files is not sized here (its input shape is
    known once the files are read, on the worker).
    """
    from layerlab.data.prepare import input_signature
    from layerlab.nn.resolve import network_for
    from layerlab.nn.shapes import summarize

    if cfg.data.source in ("npz", "npy", "csv"):
        return
    input_shape, num_classes = input_signature(cfg.data)
    total = summarize(network_for(cfg.model, input_shape=input_shape, num_classes=num_classes)).total_params
    if total > settings.LAYERLAB_MAX_PARAMETERS:
        raise cap_error(
            "model",
            total,
            settings.LAYERLAB_MAX_PARAMETERS,
            "LAYERLAB_MAX_PARAMETERS",
            "the network's parameters",
            "parameters",
        )
