"""Builders of the convolution kinds: conv2d and coordconv2d."""

from __future__ import annotations

import torch
from torch import nn

from layerlab.nn.kinds import conv as kinds
from layerlab.nn.layers.registry import initialize, register_builder


def coordinate_channels(height: int, width: int, with_r: bool) -> torch.Tensor:
    """(2 or 3, H, W): x (the column) then y (the row), scaled to [-1, 1], then optionally sqrt(x^2 + y^2).

    The order is the official AddCoords' (uber-research/CoordConv, CoordConv.py): on an NHWC
    input ``xx_channel = matmul(ones(x_dim, 1), range(y_dim)[None])`` varies along the second
    spatial axis (the width, the column index), ``yy_channel`` along the first (the row index), and
    they are concatenated ``[input, xx_channel, yy_channel]`` (then ``rr``).
    """

    def axis(n: int) -> torch.Tensor:
        return torch.linspace(-1.0, 1.0, n) if n > 1 else torch.zeros(1)

    x = axis(width)[None, :].expand(height, width)  # column
    y = axis(height)[:, None].expand(height, width)  # row
    channels = [x, y]
    if with_r:
        channels.append(torch.sqrt(x**2 + y**2))
    return torch.stack(channels)


class CoordConv2d(nn.Conv2d):
    """CoordConv (Liu et al. 2018): a Conv2d over the input plus coordinate channels.

    A Conv2d subclass, so its parameters are named like a plain conv's (``coord1.weight``).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, *, height: int, width: int, with_r: bool, **kw
    ):
        coords = coordinate_channels(height, width, with_r)
        super().__init__(in_channels + coords.shape[0], out_channels, kernel, **kw)
        # Not persistent: the channels follow from the shape, so checkpoints stay plain weights.
        self.register_buffer("coords", coords, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coords = self.coords.to(dtype=x.dtype).expand(x.shape[0], -1, -1, -1)
        return super().forward(torch.cat([x, coords], dim=1))


@register_builder(kinds.Conv2dSpec, kinds.CoordConv2dSpec)
def build_conv2d(layer, shape, ctx) -> nn.Module:
    out = ctx.num_classes if layer.out == "classes" else layer.out
    options = {"stride": layer.stride, "padding": layer.pad, "bias": layer.bias}
    if isinstance(layer, kinds.CoordConv2dSpec):
        module = CoordConv2d(
            shape[0], out, layer.kernel, height=shape[1], width=shape[2], with_r=layer.with_r, **options
        )
    else:
        module = nn.Conv2d(shape[0], out, layer.kernel, **options)
    initialize(module, layer.init)
    return module
