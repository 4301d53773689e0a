"""Builders of the reshaping kinds: flatten and tile."""

from __future__ import annotations

import torch
from torch import nn

from layerlab.nn.kinds import reshape as kinds
from layerlab.nn.layers.registry import register_builder


class Tile(nn.Module):
    """Broadcast a batch of vectors (N, C) to maps (N, C, H, W)."""

    def __init__(self, height: int, width: int):
        super().__init__()
        self.height, self.width = height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, None, None].expand(-1, -1, self.height, self.width)

    def extra_repr(self) -> str:
        return f"size=({self.height}, {self.width})"


@register_builder(kinds.FlattenSpec)
def build_flatten(layer, shape, ctx) -> nn.Module:
    return nn.Flatten()


@register_builder(kinds.TileSpec)
def build_tile(layer, shape, ctx) -> nn.Module:
    return Tile(*layer.size)
