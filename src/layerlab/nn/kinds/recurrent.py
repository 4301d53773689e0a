"""Recurrent kinds over sequences (T, F): lstm and gru."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from layerlab.nn.kinds.base import (
    MAX_REPEAT,
    MAX_WIDTH,
    Counts,
    Init,
    LayerSpec,
    Shape,
    ShapeContext,
    option,
    register_kind,
)

SEQUENCE_FIX = (
    "give data shaped (T, F): T time steps of F features; arrays (N, T, F) are read as sequences "
    "with data.layout: sequence; for frames (T, C, H, W) put a {kind: timedistributed} before it whose "
    "layers end with {kind: flatten}"
)


@dataclass(kw_only=True)
class _RecurrentBase(LayerSpec):
    hidden: int = option(help="hidden units per direction", minimum=1, maximum=MAX_WIDTH)
    layers: int = option(1, help="stacked recurrent layers", minimum=1, maximum=MAX_REPEAT)
    bidirectional: bool = option(False, help="also run the sequence backwards (doubles the output)")
    returns: Literal["last", "sequence"] = option(
        "last", key="return", help="last: the final hidden state (H,); sequence: every step (T, H)"
    )
    dropout: float = option(0.0, help="dropout between stacked layers", minimum=0.0, below=1.0)
    init: Init = option("default", help="default, xavier or he")

    gates = 1  # weight blocks per cell: 4 for LSTM, 3 for GRU

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def output_shape(self, shape: Shape, ctx: ShapeContext) -> Shape:
        ctx.need_rank(shape, 2, "a sequence (T, F)", SEQUENCE_FIX)
        width = self.hidden * self.directions
        return (width,) if self.returns == "last" else (shape[0], width)

    def counts(self, shape: Shape, out: Shape, ctx: ShapeContext) -> Counts:
        steps, features = shape
        params = macs = 0
        for layer in range(self.layers):
            inputs = features if layer == 0 else self.hidden * self.directions
            # Per direction: W_ih (G*H x in), W_hh (G*H x H) and two biases (torch keeps b_ih and b_hh).
            weights = self.gates * self.hidden * (inputs + self.hidden)
            params += self.directions * (weights + 2 * self.gates * self.hidden)
            macs += self.directions * steps * weights
        return Counts(params=params, macs=macs)


@register_kind("lstm")
@dataclass(kw_only=True)
class LSTMSpec(_RecurrentBase):
    doc = "long short-term memory over a sequence (T, F), batch first"
    gates = 4


@register_kind("gru")
@dataclass(kw_only=True)
class GRUSpec(_RecurrentBase):
    doc = "gated recurrent unit over a sequence (T, F), batch first"
    gates = 3
