"""Builder of the residual kind."""

from __future__ import annotations

import torch
from torch import nn

from layerlab.nn.kinds import residual as kinds
from layerlab.nn.layers.registry import register_builder


class Residual(nn.Module):
    """body(x) + projection(x): the body's layers are sub-modules named after the spec's layer names."""

    def __init__(self, body: dict[str, nn.Module], projection: nn.Module | None):
        super().__init__()
        self._order = list(body)
        for name, module in body.items():
            self.add_module(name, module)
        self.projection = projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for name in self._order:
            y = getattr(self, name)(y)
        return y + (x if self.projection is None else self.projection(x))


@register_builder(kinds.ResidualSpec)
def build_residual(layer, shape, ctx) -> nn.Module:
    modules, out = ctx.build_sequence(layer.layers, shape, f"{ctx.index}.")
    plan = kinds.projection_for(shape, out)
    projection = None
    if plan is not None:
        kind, stride = plan
        if kind == "conv":
            projection = nn.Conv2d(shape[0], out[0], 1, stride=stride)
        else:
            projection = nn.Linear(shape[-1], out[-1])
    return Residual(
        {child.name: module for child, module in zip(layer.layers, modules, strict=True)}, projection
    )
