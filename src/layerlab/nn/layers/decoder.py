"""Builders of the decoder kinds: convtranspose2d and upsample."""

from __future__ import annotations

from torch import nn

from layerlab.nn.kinds import decoder as kinds
from layerlab.nn.layers.registry import initialize, register_builder


@register_builder(kinds.ConvTranspose2dSpec)
def build_convtranspose2d(layer, shape, ctx) -> nn.Module:
    out = ctx.num_classes if layer.out == "classes" else layer.out
    module = nn.ConvTranspose2d(
        shape[0],
        out,
        layer.kernel,
        stride=layer.stride,
        padding=layer.padding,
        output_padding=layer.output_padding,
        bias=layer.bias,
    )
    initialize(module, layer.init)
    return module


@register_builder(kinds.UpsampleSpec)
def build_upsample(layer, shape, ctx) -> nn.Module:
    # The output size is fixed by the spec's arithmetic (floor(H*scale)), so the module resizes to that
    # size: the same in eager, TorchScript and ONNX (a float scale factor is not exported alike).
    size = tuple(layer.size) if layer.size is not None else tuple(int(s * layer.scale) for s in shape[1:])
    return nn.Upsample(size=size, mode=layer.mode, align_corners=False if layer.mode == "bilinear" else None)
