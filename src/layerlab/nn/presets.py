"""Named architectures (mlp, lenet5, tennet, signnet, coordconv...) as plain spec mappings a user can print and edit."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

from layerlab.core.configtree import suggest
from layerlab.core.errors import ConfigError, SpecError

Shape = tuple[int, ...]
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu")

# name -> one-line description
PRESETS: dict[str, str] = {
    "mlp": "fully-connected net: hidden layers of the given sizes (default [100]), then the class logits",
    "dynamicnet": "PyTorch's DynamicNet: linear, a weight-shared hidden layer repeated 0..3 times, linear",
    "lenet5": "LeNet-5: conv5-pool-conv5-pool-fc120-fc84 (padding 2 for inputs under 32x32)",
    "tennet": "LeNet-5 adapted to 64x64 grayscale: the classic sign-language-digits baseline",
    "signnet": "conv-bn-relu-pool blocks with (F-1)/2 padding, global average pooling, dropout (~15 MMACs at 64x64)",
    "coordconv-classifier": "CoordConv coordinate classifier: (i, j) tiled to a map, 1x1 coordconv/convs, one logit per pixel",
    "conv-classifier": "the plain-conv baseline of coordconv-classifier: (i, j) tiled to a map, convs, one logit per pixel",
}

_BUILDERS: dict[str, Callable[..., list[dict[str, Any]]]] = {}


def _preset(name: str):
    def decorate(function):
        _BUILDERS[name] = function
        return function

    return decorate


def _init_for(activation: str) -> str:
    """he for the ReLU family, xavier for the saturating ones (CS231n's advice)."""
    return "xavier" if activation in ("tanh", "sigmoid") else "he"


def _activation(activation: str) -> dict[str, Any]:
    if activation not in ACTIVATIONS:
        close = suggest(activation, ACTIVATIONS)
        hint = f"did you mean '{close}'?" if close else f"choose one of: {', '.join(ACTIVATIONS)}"
        raise SpecError(f"unknown activation '{activation}'", hint=hint, where="model.options.activation")
    return {"kind": activation}


def _need_image(name: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ConfigError(
            f"preset {name} needs images (C, H, W), the data gives shape {list(shape)}",
            hint="use preset mlp for vectors, or image data",
            where="model.preset",
        )
    return shape  # type: ignore[return-value]


def _sizes(value: Any, key: str) -> list[int]:
    values = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise SpecError(f"{key} must be whole numbers >= 1, got {value!r}", where=f"model.options.{key}")
    return list(values)


@_preset("mlp")
def _mlp(
    shape: Shape, classes: int | None, *, hidden=(100,), activation="relu", dropout=0.0, batchnorm=False
):
    layers: list[dict[str, Any]] = [{"kind": "flatten"}] if len(shape) > 1 else []
    for i, size in enumerate(_sizes(hidden, "hidden") if hidden else [], start=1):
        layers.append({"kind": "linear", "out": size, "init": _init_for(activation), "name": f"fc{i}"})
        if batchnorm:
            layers.append({"kind": "batchnorm"})
        layers.append(_activation(activation))
        if dropout:
            layers.append({"kind": "dropout", "p": dropout})
    layers.append({"kind": "linear", "out": "classes", "name": "out"})
    return layers


@_preset("dynamicnet")
def _dynamicnet(
    shape: Shape, classes: int | None, *, hidden=100, min=0, max=3, eval_depth=None, activation="relu"
):
    layers: list[dict[str, Any]] = [{"kind": "flatten"}] if len(shape) > 1 else []
    layers += [
        {"kind": "linear", "out": hidden, "name": "input_linear", "init": _init_for(activation)},
        _activation(activation),
        {
            "kind": "dynamic",
            "min": min,
            "max": max,
            "name": "middle_linear",
            "activation": activation if activation in ("relu", "tanh") else "relu",
        },
        {"kind": "linear", "out": "classes", "name": "output_linear"},
    ]
    if eval_depth is not None:
        layers[-2]["eval_depth"] = eval_depth
    return layers


def _lenet(shape, channels, hidden, kernel, padding, activation, pool, dropout):
    layers: list[dict[str, Any]] = []
    for i, out in enumerate(_sizes(channels, "channels"), start=1):
        layers += [
            {
                "kind": "conv2d",
                "out": out,
                "kernel": kernel,
                "padding": padding,
                "name": f"conv{i}",
                "init": _init_for(activation),
            },
            _activation(activation),
            {"kind": f"{pool}pool2d", "kernel": 2, "name": f"pool{i}"},
        ]
    layers.append({"kind": "flatten"})
    for i, size in enumerate(_sizes(hidden, "hidden"), start=1):
        layers += [
            {"kind": "linear", "out": size, "name": f"fc{i}", "init": _init_for(activation)},
            _activation(activation),
        ]
        if dropout:
            layers.append({"kind": "dropout", "p": dropout})
    layers.append({"kind": "linear", "out": "classes", "name": "out"})
    return layers


@_preset("lenet5")
def _lenet5(
    shape: Shape, classes: int | None, *, channels=(6, 16), hidden=(120, 84), kernel=5, padding=None,
    activation="relu", pool="max", dropout=0.0,
):  # fmt: skip
    _, height, width = _need_image("lenet5", shape)
    if padding is None:  # LeNet-5 expects 32x32; smaller inputs (MNIST 28x28, digits 8x8) keep their size
        padding = 0 if min(height, width) >= 32 else (kernel - 1) // 2
    if pool not in ("max", "avg"):
        raise SpecError(f"pool must be max or avg, got {pool!r}", where="model.options.pool")
    return _lenet(shape, channels, hidden, kernel, padding, activation, pool, dropout)


@_preset("tennet")
def _tennet(
    shape: Shape, classes: int | None, *, channels=(6, 16), hidden=(120, 84), kernel=5, activation="relu",
    dropout=0.0,
):  # fmt: skip
    _need_image("tennet", shape)
    return _lenet(shape, channels, hidden, kernel, 0, activation, "max", dropout)


@_preset("signnet")
def _signnet(shape: Shape, classes: int | None, *, width=16, blocks=4, kernel=3, dropout=0.3):
    _, height, wide = _need_image("signnet", shape)
    layers: list[dict[str, Any]] = []
    for b in range(1, blocks + 1):
        channels = width * 2 ** min(b - 1, 3)
        layers += [
            {
                "kind": "conv2d",
                "out": channels,
                "kernel": kernel,
                "padding": "same",
                "bias": False,
                "init": "he",
                "name": f"conv{b}",
            },
            {"kind": "batchnorm", "name": f"bn{b}"},
            {"kind": "relu"},
        ]
        if min(height, wide) >= 2:  # halve while there is something to halve
            layers.append({"kind": "maxpool2d", "kernel": 2, "name": f"pool{b}"})
            height, wide = height // 2, wide // 2
    layers.append({"kind": "global_avgpool"})
    if dropout:
        layers.append({"kind": "dropout", "p": dropout})
    layers.append({"kind": "linear", "out": "classes", "name": "out"})
    return layers


def _coordinate_map(name: str, shape: Shape, classes: int | None, size) -> list[int]:
    if tuple(shape) != (2,):
        raise ConfigError(
            f"preset {name} needs the (i, j) coordinate pair as input (shape [2]), the data gives {list(shape)}",
            hint="use the not-so-clevr source",
            where="model.preset",
        )
    if size is None:
        side = math.isqrt(classes) if classes else 64
        size = [side, side] if classes and side * side == classes else [64, 64]
    size = _sizes(size, "size")
    if classes is not None and size[0] * size[1] != classes:
        raise SpecError(
            f"a {size[0]}x{size[1]} map gives {size[0] * size[1]} logits but the data has {classes} classes",
            hint="set size to the canvas [H, W] (one class per pixel)",
            where="model.options.size",
        )
    return size


def _pixel_classifier(size, channels, first: dict[str, Any], kernel: int) -> list[dict[str, Any]]:
    channels = _sizes(channels, "channels")
    layers = [
        {"kind": "tile", "size": size, "name": "tile"},
        {**first, "out": channels[0], "name": "conv1"},
        {"kind": "relu"},
    ]
    for i, out in enumerate(channels[1:], start=2):
        layers += [
            {"kind": "conv2d", "out": out, "kernel": kernel, "padding": "same", "name": f"conv{i}"},
            {"kind": "relu"},
        ]
    layers += [{"kind": "conv2d", "out": 1, "kernel": 1, "name": "logits"}, {"kind": "flatten"}]
    return layers


@_preset("coordconv-classifier")
def _coordconv_classifier(
    shape: Shape, classes: int | None, *, channels=(32, 32, 32), with_r=False, size=None
):
    size = _coordinate_map("coordconv-classifier", shape, classes, size)
    return _pixel_classifier(size, channels, {"kind": "coordconv2d", "kernel": 1, "with_r": with_r}, 1)


@_preset("conv-classifier")
def _conv_classifier(shape: Shape, classes: int | None, *, channels=(16, 16, 16), kernel=3, size=None):
    size = _coordinate_map("conv-classifier", shape, classes, size)
    if kernel % 2 == 0:
        raise SpecError(
            f"kernel must be odd (padding (F-1)/2 keeps the map), got {kernel}", where="model.options.kernel"
        )
    return _pixel_classifier(size, channels, {"kind": "conv2d", "kernel": kernel, "padding": "same"}, kernel)


def preset_options(name: str) -> dict[str, Any]:
    """The options a preset takes, with their defaults."""
    parameters = inspect.signature(_BUILDERS[name]).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def preset_spec(
    name: str, *, input_shape: Shape | list[int], num_classes: int | None, **options: Any
) -> dict[str, Any]:
    """A preset as a plain spec mapping ``{input, classes, layers}``, ready to print, edit or parse.

    Args:
        name: a key of ``PRESETS``.
        input_shape: the shape of one example ((F,), (C, H, W) or (2,) for the coordinate task).
        num_classes: the number of classes (what the final ``out: classes`` means).
        options: the preset's options (e.g. ``hidden=[64, 64]`` for mlp, ``width=24`` for signnet).
    """
    if name not in _BUILDERS:
        close = suggest(name, _BUILDERS)
        hint = f"did you mean '{close}'?" if close else f"presets: {', '.join(PRESETS)}"
        raise ConfigError(f"unknown preset '{name}'", hint=hint, where="model.preset")
    known = preset_options(name)
    for key in options:
        if key not in known:
            close = suggest(key, known)
            hint = (
                f"did you mean '{close}'?" if close else f"{name} takes: {', '.join(known) or 'no options'}"
            )
            raise SpecError(f"unknown option '{key}' for preset {name}", hint=hint, where="model.options")
    shape = tuple(int(d) for d in input_shape)
    layers = _BUILDERS[name](shape, num_classes, **options)
    spec: dict[str, Any] = {"input": list(shape)}
    if num_classes is not None:
        spec["classes"] = num_classes
    spec["layers"] = layers
    return spec
