"""Helpers shared by the data tests (imported by file name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, value: int, size: tuple[int, int] = (12, 10), mode: str = "RGB") -> None:
    """A flat image of one gray value (mode RGB or L), written by extension (png, jpg ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.full((size[1], size[0], 3) if mode == "RGB" else (size[1], size[0]), value, dtype=np.uint8)
    Image.fromarray(array, mode=mode).save(path)
