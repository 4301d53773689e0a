"""layerlab.client."""
