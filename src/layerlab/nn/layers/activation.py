"""Builders of the activation kinds."""

from __future__ import annotations

from torch import nn

from layerlab.nn.kinds import activation as kinds
from layerlab.nn.layers.registry import register_builder


@register_builder(kinds.ReLUSpec)
def build_relu(layer, shape, ctx) -> nn.Module:
    return nn.ReLU()


@register_builder(kinds.LeakyReLUSpec)
def build_leaky_relu(layer, shape, ctx) -> nn.Module:
    return nn.LeakyReLU(layer.slope)


@register_builder(kinds.TanhSpec)
def build_tanh(layer, shape, ctx) -> nn.Module:
    return nn.Tanh()


@register_builder(kinds.SigmoidSpec)
def build_sigmoid(layer, shape, ctx) -> nn.Module:
    return nn.Sigmoid()


@register_builder(kinds.GELUSpec)
def build_gelu(layer, shape, ctx) -> nn.Module:
    return nn.GELU()
