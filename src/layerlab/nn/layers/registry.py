"""The builder registry: spec class -> function making the torch module, and weight initialization."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from layerlab.nn.kinds.base import LayerSpec, Shape

# spec class -> builder(layer, input_shape, context) -> nn.Module
BUILDERS: dict[type[LayerSpec], Callable[[LayerSpec, Shape, BuildContext], nn.Module]] = {}


def register_builder(*spec_classes: type[LayerSpec]):
    """Decorator: register a builder for one or more spec classes."""

    def decorate(function):
        for cls in spec_classes:
            BUILDERS[cls] = function
        return function

    return decorate


def builder_for(layer: LayerSpec) -> Callable[[LayerSpec, Shape, BuildContext], nn.Module]:
    """The builder registered for the layer's spec class."""
    try:
        return BUILDERS[type(layer)]
    except KeyError:
        raise NotImplementedError(f"no builder registered for layer kind '{layer.kind}'") from None


class BuildContext:
    """What a builder may need besides its layer: the class count, and building a nested body."""

    def __init__(self, num_classes: int | None, index: str = ""):
        self.num_classes = num_classes
        self.index = index

    def build_sequence(
        self, layers: list[LayerSpec], shape: Shape, prefix: str
    ) -> tuple[list[nn.Module], Shape]:
        """Build ``layers`` from ``shape``: the modules (in order) and the output shape."""
        from layerlab.nn.shapes import infer_layer

        modules = []
        for i, layer in enumerate(layers):
            index = f"{prefix}{i}"
            module = builder_for(layer)(layer, shape, BuildContext(self.num_classes, index))
            shape, _ = infer_layer(layer, shape, index, self.num_classes)
            modules.append(module)
        return modules, shape


@torch.no_grad()
def initialize(module: nn.Module, scheme: str) -> None:
    """Re-initialize every weight matrix of ``module``; biases become zero.

    ``xavier``: randn / sqrt(n); ``he``: randn * sqrt(2 / n), n being the fan-in (inputs per output:
    in_features, or in_channels * F * F). ``default`` keeps PyTorch's own initialization.
    """
    if scheme == "default":
        return
    gain = {"xavier": 1.0, "he": 2.0}[scheme]
    for name, param in module.named_parameters():
        if param.dim() >= 2:
            fan_in = param[0].numel()
            param.copy_(torch.randn_like(param) * math.sqrt(gain / fan_in))
        elif name.split(".")[-1].startswith("bias"):
            param.zero_()
