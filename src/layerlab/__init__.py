"""layerlab: a self-hosted deep-learning lab."""

__version__ = "0.1.0"
