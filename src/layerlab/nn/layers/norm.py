"""Builders of batch normalization and dropout."""

from __future__ import annotations

from torch import nn

from layerlab.nn.kinds import norm as kinds
from layerlab.nn.layers.registry import register_builder


@register_builder(kinds.BatchNormSpec, kinds.BatchNorm1dSpec, kinds.BatchNorm2dSpec)
def build_batchnorm(layer, shape, ctx) -> nn.Module:
    cls = nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d
    return cls(shape[0], eps=layer.eps, momentum=layer.momentum)


@register_builder(kinds.DropoutSpec)
def build_dropout(layer, shape, ctx) -> nn.Module:
    return nn.Dropout(layer.p)


@register_builder(kinds.Dropout2dSpec)
def build_dropout2d(layer, shape, ctx) -> nn.Module:
    return nn.Dropout2d(layer.p)
