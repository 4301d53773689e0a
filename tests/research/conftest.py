"""Fixtures of the research tests: a tiny spiral experiment config (seconds to run)."""

from __future__ import annotations

import copy

import pytest

TINY = {
    "name": "tiny-seeds",
    "data": {
        "source": "spiral",
        "classes": 3,
        "points_per_class": 20,
        "split": {"method": "random", "val": 0.2, "test": 0.2},
    },
    "model": {"preset": "mlp", "options": {"hidden": [8]}},
    "train": {"epochs": 3, "batch_size": 32, "lr": 0.01, "num_threads": 1},
    "experiment": {"kind": "seeds", "seeds": [0, 1]},
}


@pytest.fixture
def tiny_config():
    """A seeds experiment over two seeds of a 3-epoch spiral MLP (a fresh copy per test)."""
    return copy.deepcopy(TINY)
