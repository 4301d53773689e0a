"""Build a torch module from a checked network spec: one sub-module per layer, named after the layer."""

from __future__ import annotations

import torch
from torch import nn

from layerlab.core.errors import SpecError
from layerlab.nn.layers import BuildContext
from layerlab.nn.spec import NetworkSpec


class Network(nn.Module):
    """The layers of a spec applied in order; a state_dict key is ``<layer name>.<parameter>``.

    Layers are direct sub-modules named after the spec (``conv1.weight``, ``res1.conv_a.weight``),
    so fine-tuning can match them by name and shape. The output is logits: no softmax.
    """

    def __init__(self, named_layers: list[tuple[str, nn.Module]], input_shape: tuple[int, ...], output_shape):
        super().__init__()
        self._order: list[str] = []
        for name, module in named_layers:
            try:
                self.add_module(name, module)
            except KeyError:
                raise SpecError(
                    f"name '{name}' clashes with an attribute of the torch module",
                    hint="rename the layer (e.g. add a digit)",
                    where=name,
                ) from None
            self._order.append(name)
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(output_shape)

    @property
    def layer_names(self) -> list[str]:
        """The top-level layer names, in order."""
        return list(self._order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self._order:
            x = getattr(self, name)(x)
        return x


def build_network(spec: NetworkSpec) -> Network:
    """The torch module of ``spec``; its output shape per example equals ``summarize(spec).output_shape``.

    Args:
        spec: a parsed spec with a known input shape (and class count, where 'classes' is used).
    """
    if spec.input_shape is None:
        raise SpecError(
            "the network has no input shape", hint="give input: [C, H, W] or let the data supply it"
        )
    modules, output_shape = BuildContext(spec.num_classes).build_sequence(
        spec.layers, tuple(spec.input_shape), ""
    )
    named = [(layer.name, module) for layer, module in zip(spec.layers, modules, strict=True)]
    return Network(named, spec.input_shape, output_shape)
