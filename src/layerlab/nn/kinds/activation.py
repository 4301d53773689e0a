"""Activation kinds: relu, leaky_relu, tanh, sigmoid, gelu (shape-preserving, no parameters)."""

from __future__ import annotations

from dataclasses import dataclass

from layerlab.nn.kinds.base import LayerSpec, option, register_kind

# Kinds refused on purpose, with the reason shown to the user.
REFUSED_KINDS = {
    "softmax": (
        "the network ends in logits: cross-entropy applies log-softmax itself, so a softmax layer "
        "would squash the gradients",
        "remove the softmax layer (predictions are shown as probabilities anyway)",
    ),
    "log_softmax": (
        "the network ends in logits: cross-entropy applies log-softmax itself",
        "remove the log_softmax layer",
    ),
}


@register_kind("relu")
@dataclass(kw_only=True)
class ReLUSpec(LayerSpec):
    doc = "max(0, x); pair with init: he in the layer before"


@register_kind("leaky_relu")
@dataclass(kw_only=True)
class LeakyReLUSpec(LayerSpec):
    doc = "x for x > 0, slope * x otherwise"
    slope: float = option(0.01, help="negative slope", minimum=0.0, below=1.0)


@register_kind("tanh")
@dataclass(kw_only=True)
class TanhSpec(LayerSpec):
    doc = "hyperbolic tangent; pair with init: xavier in the layer before"


@register_kind("sigmoid")
@dataclass(kw_only=True)
class SigmoidSpec(LayerSpec):
    doc = "logistic sigmoid"


@register_kind("gelu")
@dataclass(kw_only=True)
class GELUSpec(LayerSpec):
    doc = "Gaussian error linear unit"
