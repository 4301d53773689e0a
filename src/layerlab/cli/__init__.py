"""The ``layerlab`` command line."""
