"""Tiny synthetic image folders and arrays for the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import write_image


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Classes ``a`` (dark) and ``b`` (bright), 10 PNGs each named img_<n>.png, n running across classes."""
    root = tmp_path / "photos"
    for n in range(20):
        label = "a" if n % 2 == 0 else "b"
        write_image(root / label / f"img_{n}.png", 40 + n if label == "a" else 200 + n)
    return root


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"
