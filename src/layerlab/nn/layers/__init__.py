"""Builders: one module per layer family, each registering a torch builder for its spec classes."""

from layerlab.nn.layers import activation, conv, dense, norm, pool, recurrent, reshape, residual  # noqa: F401
from layerlab.nn.layers.registry import BUILDERS, BuildContext, builder_for

__all__ = ["BUILDERS", "BuildContext", "builder_for"]
