"""Builder of the timedistributed kind: one body applied to every step, the time axis folded into the batch."""

from __future__ import annotations

import torch
from torch import nn

from layerlab.nn.kinds import sequence as kinds
from layerlab.nn.layers.registry import register_builder


class TimeDistributed(nn.Module):
    """(N, T, ...) -> (N, T, *body output): the body sees N*T examples of shape (...).

    The body's layers are sub-modules named after the spec's layer names (``frames.conv1.weight``),
    so fine-tuning, hooks and inspection find them by name.
    """

    def __init__(self, body: dict[str, nn.Module]):
        super().__init__()
        self._order = list(body)
        for name, module in body.items():
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps = x.shape[0], x.shape[1]
        y = x.flatten(0, 1)
        for name in self._order:
            y = getattr(self, name)(y)
        return y.unflatten(0, (batch, steps))


@register_builder(kinds.TimeDistributedSpec)
def build_timedistributed(layer, shape, ctx) -> nn.Module:
    modules, _ = ctx.build_sequence(layer.layers, tuple(shape[1:]), f"{ctx.index}.")
    return TimeDistributed({child.name: module for child, module in zip(layer.layers, modules, strict=True)})
