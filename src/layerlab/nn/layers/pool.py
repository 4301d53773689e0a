"""Builders of the pooling kinds."""

from __future__ import annotations

from torch import nn

from layerlab.nn.kinds import pool as kinds
from layerlab.nn.layers.registry import register_builder


@register_builder(kinds.MaxPool2dSpec)
def build_maxpool2d(layer, shape, ctx) -> nn.Module:
    return nn.MaxPool2d(layer.kernel, stride=layer.step, padding=layer.padding)


@register_builder(kinds.AvgPool2dSpec)
def build_avgpool2d(layer, shape, ctx) -> nn.Module:
    return nn.AvgPool2d(layer.kernel, stride=layer.step, padding=layer.padding)


@register_builder(kinds.GlobalAvgPoolSpec)
def build_global_avgpool(layer, shape, ctx) -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
