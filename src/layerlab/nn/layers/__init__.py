"""layerlab.nn.layers."""
