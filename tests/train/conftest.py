"""Fixtures of the training tests: stand-ins for nn/data (see standins.py)."""

from standins import standins  # noqa: F401  (a fixture, used by name)
