"""Builders of the fully-connected kinds: linear and dynamic."""

from __future__ import annotations

import torch
from torch import nn

from layerlab.nn.kinds import dense as kinds
from layerlab.nn.layers.registry import initialize, register_builder


class DynamicLinear(nn.Module):
    """One linear layer (F -> F) applied a random number of times in training, as in PyTorch's DynamicNet.

    The depth is drawn with ``torch.randint`` from torch's global RNG, so a checkpoint of that RNG
    state makes a resumed run draw the same depths. In evaluation the depth is ``eval_depth``.
    """

    def __init__(self, features: int, min_depth: int, max_depth: int, eval_depth: int, activation: str):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.min_depth, self.max_depth, self.eval_depth = min_depth, max_depth, eval_depth
        self.activation = {"relu": nn.ReLU(), "tanh": nn.Tanh(), "none": nn.Identity()}[activation]

    def depth(self) -> int:
        if not self.training:
            return self.eval_depth
        return int(torch.randint(self.min_depth, self.max_depth + 1, (1,)).item())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.depth()):
            x = self.activation(self.linear(x))
        return x

    def extra_repr(self) -> str:
        return f"depth={self.min_depth}..{self.max_depth}, eval_depth={self.eval_depth}"


@register_builder(kinds.LinearSpec)
def build_linear(layer, shape, ctx) -> nn.Module:
    out = ctx.num_classes if layer.out == "classes" else layer.out
    module = nn.Linear(shape[-1], out, bias=layer.bias)
    initialize(module, layer.init)
    return module


@register_builder(kinds.DynamicSpec)
def build_dynamic(layer, shape, ctx) -> nn.Module:
    module = DynamicLinear(shape[0], layer.min, layer.max, layer.depth_at_eval, layer.activation)
    initialize(module, layer.init)
    return module
