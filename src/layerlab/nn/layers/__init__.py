"""Builders: one module per layer family, each registering a torch builder for its spec classes."""

from layerlab.nn.layers import (  # noqa: F401
    activation,
    conv,
    decoder,
    dense,
    norm,
    pool,
    recurrent,
    reshape,
    residual,
    sequence,
)
from layerlab.nn.layers.registry import BUILDERS, BuildContext, builder_for

__all__ = ["BUILDERS", "BuildContext", "builder_for"]
