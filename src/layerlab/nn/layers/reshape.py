"""Builders of the reshaping kinds: flatten, unflatten, reshape and tile."""

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


class Reshape(nn.Module):
    """Reshape each example of a batch (N, ...) to ``shape`` (the batch axis kept)."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


@register_builder(kinds.FlattenSpec)
def build_flatten(layer, shape, ctx) -> nn.Module:
    return nn.Flatten()


@register_builder(kinds.TileSpec)
def build_tile(layer, shape, ctx) -> nn.Module:
    return Tile(*layer.size)


@register_builder(kinds.ReshapeSpec, kinds.UnflattenSpec)
def build_reshape(layer, shape, ctx) -> nn.Module:
    from layerlab.nn.shapes import infer_layer

    target, _ = infer_layer(layer, shape, ctx.index, ctx.num_classes)  # -1 resolved
    return Reshape(target)
