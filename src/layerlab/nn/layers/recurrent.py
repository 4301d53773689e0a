"""Builders of the recurrent kinds: lstm and gru over batch-first sequences."""

from __future__ import annotations

import torch
from torch import nn

from layerlab.nn.kinds import recurrent as kinds
from layerlab.nn.layers.registry import initialize, register_builder


class Recurrent(nn.Module):
    """Run an LSTM or GRU over (N, T, F); return every step (N, T, D*H) or the last state (N, D*H).

    'last' is the top layer's final hidden state of each direction (for the backward direction that
    is its state after reading the whole sequence back to step 0), concatenated.
    """

    def __init__(self, rnn: nn.LSTM | nn.GRU, returns: str):
        super().__init__()
        self.rnn = rnn
        self.returns = returns

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, state = self.rnn(x)
        if self.returns == "sequence":
            return out
        hidden = state[0] if isinstance(state, tuple) else state  # LSTM gives (h, c)
        directions = 2 if self.rnn.bidirectional else 1
        return hidden[-directions:].transpose(0, 1).reshape(x.shape[0], -1)


@register_builder(kinds.LSTMSpec, kinds.GRUSpec)
def build_recurrent(layer, shape, ctx) -> nn.Module:
    cls = nn.LSTM if isinstance(layer, kinds.LSTMSpec) else nn.GRU
    rnn = cls(
        shape[-1],
        layer.hidden,
        num_layers=layer.layers,
        batch_first=True,
        bidirectional=layer.bidirectional,
        dropout=layer.dropout if layer.layers > 1 else 0.0,
    )
    initialize(rnn, layer.init)
    return Recurrent(rnn, layer.returns)
