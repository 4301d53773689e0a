"""Declarative networks: specs, shapes, layers, presets and the builder."""
