"""layerlab.research."""
