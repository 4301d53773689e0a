"""Layer kinds as torch-free spec classes, one module per family; ``layerlab.nn.spec`` loads them all."""
