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
    "autoencoder": "dense undercomplete autoencoder: encoder layers, a small linear code (8), the mirrored decoder, the input back",
    "sparse-autoencoder": "dense overcomplete autoencoder: a ReLU code wider than the input (256), for train.code_l1",
    "conv-autoencoder": "convolutional autoencoder: conv-relu-pool blocks, a dense code, stride-2 transposed convs back",
    "denoising-autoencoder": "the dense autoencoder with a wider code (32), trained with data.noise corrupting its inputs",
    "deconv-classifier": "the paper's deconv baseline: (i, j) as a 1x1 map, stride-2 transposed convs up to one logit per pixel",
    "coordconv-regressor": "CoordConv coordinate regressor: one-hot image plus coordinate channels, 1x1/3x3 convs, max over the map",
    "conv-regressor": "the plain-conv baseline of coordconv-regressor: conv-pool blocks, a hidden layer, the (i, j) outputs",
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


@_preset("deconv-classifier")
def _deconv_classifier(
    shape: Shape, classes: int | None, *, channels=(64, 64, 64, 32, 32), kernel=3, batchnorm=True, size=None
):
    """DeconvPainter of uber-research/CoordConv: the (2,) input as a 2x1x1 map, then stride-2 transposed
    convs (TF 'same': padding (F-1)/2, output padding 1) doubling it to the canvas, BN + ReLU between;
    ``channels`` are the hidden layers (the official code's 64*mul, 64, 64, 32, 32 for a 64x64 canvas)."""
    size = _coordinate_map("deconv-classifier", shape, classes, size)
    side = size[0]
    doublings = side.bit_length() - 1
    if size[0] != size[1] or side != 2**doublings or side < 2:
        raise SpecError(
            f"the deconv baseline doubles a 1x1 map, so the canvas must be square with a power-of-2 side, "
            f"got {size[0]}x{size[1]}",
            hint="e.g. size: [64, 64]",
            where="model.options.size",
        )
    channels = _sizes(channels, "channels")
    if len(channels) != doublings - 1:
        raise SpecError(
            f"a {side}x{side} canvas takes {doublings} doublings: {doublings - 1} hidden channel sizes, "
            f"got {len(channels)}",
            hint=f"e.g. channels: {[64] * (doublings - 1)}",
            where="model.options.channels",
        )
    if kernel % 2 == 0:
        raise SpecError(f"kernel must be odd, got {kernel}", where="model.options.kernel")
    layers: list[dict[str, Any]] = [{"kind": "reshape", "shape": [2, 1, 1], "name": "point"}]
    for i, out in enumerate([*channels, 1], start=1):
        layers.append(
            {
                "kind": "convtranspose2d", "out": out, "kernel": kernel, "stride": 2,
                "padding": (kernel - 1) // 2, "output_padding": 1, "init": "he", "name": f"deconv{i}",
            }
        )  # fmt: skip
        if i <= len(channels):
            layers += [{"kind": "batchnorm", "name": f"bn{i}"}] if batchnorm else []
            layers.append({"kind": "relu"})
    layers.append({"kind": "flatten"})
    return layers


def _one_hot_image(name: str, shape: Shape, classes: int | None) -> tuple[int, int]:
    """The side of the square one-hot map a regressor reads, and its number of outputs (2: i and j)."""
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(
            f"preset {name} needs a square image (C, H, H), the data gives shape {list(shape)}",
            hint="use data.source=not-so-clevr with data.target=coordinates",
            where="model.preset",
        )
    return shape[1], 2 if classes is None else classes


@_preset("coordconv-regressor")
def _coordconv_regressor(shape: Shape, classes: int | None, *, channels=(8, 8, 8, 8)):
    """The official CoordConv regressor: coordconv 1x1, 1x1 convs, a 3x3 conv, a 3x3 conv to one map per
    output, max over the whole map. No activations, as in uber-research/CoordConv's coordconv_model."""
    side, outputs = _one_hot_image("coordconv-regressor", shape, classes)
    channels = _sizes(channels, "channels")
    layers: list[dict[str, Any]] = [
        {"kind": "coordconv2d", "out": channels[0], "kernel": 1, "name": "coordconv"}
    ]
    for i, out in enumerate(channels[1:], start=2):
        kernel = 3 if i == len(channels) else 1
        layers.append({"kind": "conv2d", "out": out, "kernel": kernel, "padding": "same", "name": f"conv{i}"})
    layers += [
        {"kind": "conv2d", "out": outputs, "kernel": 3, "padding": "same", "name": "maps"},
        {"kind": "maxpool2d", "kernel": side, "name": "argmax"},
        {"kind": "flatten"},
    ]
    return layers


@_preset("conv-regressor")
def _conv_regressor(shape: Shape, classes: int | None, *, channels=(16, 16, 16, 16), hidden=64):
    """The official conv regressor (big_conv): 3x3 conv + ReLU blocks, 2x2 max pools between, then a hidden
    layer and the outputs."""
    side, outputs = _one_hot_image("conv-regressor", shape, classes)
    channels = _sizes(channels, "channels")
    layers: list[dict[str, Any]] = []
    for i, out in enumerate(channels, start=1):
        layers += [
            {"kind": "conv2d", "out": out, "kernel": 3, "padding": "same", "init": "he", "name": f"conv{i}"},
            {"kind": "relu"},
        ]
        if i < len(channels) and side >= 2:
            layers.append({"kind": "maxpool2d", "kernel": 2, "name": f"pool{i}"})
            side //= 2
    layers += [{"kind": "flatten"}]
    for i, size in enumerate(_sizes(hidden, "hidden") if hidden else [], start=1):
        layers += [{"kind": "linear", "out": size, "init": "he", "name": f"fc{i}"}, {"kind": "relu"}]
    layers.append({"kind": "linear", "out": outputs, "name": "out"})
    return layers


def _decoded(shape: Shape) -> list[dict[str, Any]]:
    """The last layers of a dense decoder: as many values as the input, in the input's shape."""
    layers: list[dict[str, Any]] = [{"kind": "linear", "out": math.prod(shape), "name": "out"}]
    return layers + ([{"kind": "unflatten", "shape": list(shape)}] if len(shape) > 1 else [])


def _dense_autoencoder(shape: Shape, hidden, code: int, activation: str, code_activation: str | None):
    """Encoder ``hidden`` layers, the code (named ``code``: its activation when it has one), the mirror."""
    sizes = _sizes(hidden, "hidden") if hidden else []
    code = _sizes(code, "code")[0]
    layers: list[dict[str, Any]] = [{"kind": "flatten"}] if len(shape) > 1 else []
    for i, size in enumerate(sizes, start=1):
        layers += [
            {"kind": "linear", "out": size, "init": _init_for(activation), "name": f"enc{i}"},
            _activation(activation),
        ]
    if code_activation:  # the penalty of train.code_l1 reads the activation's output
        layers += [
            {"kind": "linear", "out": code, "init": _init_for(code_activation), "name": "code_linear"},
            {**_activation(code_activation), "name": "code"},
        ]
    else:
        layers.append({"kind": "linear", "out": code, "name": "code"})
    for i, size in enumerate(reversed(sizes), start=1):
        layers += [
            {"kind": "linear", "out": size, "init": _init_for(activation), "name": f"dec{i}"},
            _activation(activation),
        ]
    return layers + _decoded(shape)


@_preset("autoencoder")
def _autoencoder(
    shape: Shape, classes: int | None, *, hidden=(128,), code=8, activation="relu", code_activation=None
):
    return _dense_autoencoder(shape, hidden, code, activation, code_activation)


@_preset("sparse-autoencoder")
def _sparse_autoencoder(
    shape: Shape, classes: int | None, *, hidden=(), code=256, activation="relu", code_activation="relu"
):
    return _dense_autoencoder(shape, hidden, code, activation, code_activation)


@_preset("denoising-autoencoder")
def _denoising_autoencoder(
    shape: Shape, classes: int | None, *, hidden=(128,), code=32, activation="relu", code_activation=None
):
    return _dense_autoencoder(shape, hidden, code, activation, code_activation)


@_preset("conv-autoencoder")
def _conv_autoencoder(shape: Shape, classes: int | None, *, channels=(16, 32), code=8, activation="relu"):
    c, h, w = _need_image("conv-autoencoder", shape)
    widths = _sizes(channels, "channels")
    code = _sizes(code, "code")[0]
    factor = 2 ** len(widths)
    if h % factor or w % factor:
        raise SpecError(
            f"conv-autoencoder halves the image {len(widths)} time(s): {h}x{w} is not a multiple of {factor}",
            hint=f"resize the images (data.size) to a multiple of {factor}, or give fewer channels",
            where="model.options.channels",
        )
    layers: list[dict[str, Any]] = []
    for i, out in enumerate(widths, start=1):
        layers += [
            {
                "kind": "conv2d",
                "out": out,
                "kernel": 3,
                "padding": 1,
                "name": f"enc_conv{i}",
                "init": _init_for(activation),
            },
            _activation(activation),
            {"kind": "maxpool2d", "kernel": 2, "name": f"enc_pool{i}"},
        ]
    small = [widths[-1], h // factor, w // factor]
    layers += [
        {"kind": "flatten"},
        {"kind": "linear", "out": code, "name": "code"},
        {"kind": "linear", "out": math.prod(small), "name": "dec_fc", "init": _init_for(activation)},
        _activation(activation),
        {"kind": "unflatten", "shape": small},
    ]
    outs = [*reversed(widths[:-1]), c]
    for i, out in enumerate(outs, start=1):
        layers.append(
            {"kind": "convtranspose2d", "out": out, "kernel": 2, "stride": 2, "name": f"dec_deconv{i}"}
        )
        if i < len(outs):
            layers.append(_activation(activation))
    return layers


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
