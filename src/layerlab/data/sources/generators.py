"""Built-in sources: the CS231n spiral, scikit-learn's 8x8 digits and Not-so-Clevr coordinates."""

from __future__ import annotations

import numpy as np

from layerlab.data.config import DataConfig
from layerlab.data.sources.base import RawData

SPIRAL_DEFAULTS = {"classes": 3, "points_per_class": 100, "noise": 0.2}

CANVAS = 64  # Not-so-Clevr canvas side, in pixels
SQUARE = 9  # side of the square; its centre is 4 pixels in from its top-left corner
POSITIONS = CANVAS - SQUARE + 1  # 56 positions per axis, 3,136 in all
UNIFORM_SPLIT_STREAM = 0x4E53  # derives the uniform task split's seed from the experiment seed


def spiral(cfg: DataConfig, seed: int) -> RawData:
    """CS231n's spiral: ``classes`` arms of ``points_per_class`` 2-d points, angle noise ``noise``."""
    # None means the default; 0 is refused by the config's limits, never replaced here
    classes = SPIRAL_DEFAULTS["classes"] if cfg.classes is None else cfg.classes
    per_class = SPIRAL_DEFAULTS["points_per_class"] if cfg.points_per_class is None else cfg.points_per_class
    noise = SPIRAL_DEFAULTS["noise"] if cfg.noise is None else cfg.noise
    rng = np.random.default_rng(seed)
    x = np.zeros((per_class * classes, 2), dtype=np.float32)
    y = np.zeros(per_class * classes, dtype=np.int64)
    for j in range(classes):
        rows = slice(per_class * j, per_class * (j + 1))
        radius = np.linspace(0.0, 1.0, per_class)
        theta = np.linspace(j * 4, (j + 1) * 4, per_class) + rng.standard_normal(per_class) * noise
        x[rows] = np.c_[radius * np.sin(theta), radius * np.cos(theta)]
        y[rows] = j
    names = cfg.class_names or [str(i) for i in range(classes)]
    return RawData(x=x, y=y, classes=list(names), kind="vector", named_classes=bool(cfg.class_names))


def digits(cfg: DataConfig, seed: int) -> RawData:
    """The 1,797 real 8x8 digits bundled with scikit-learn, as ``(1, 8, 8)`` images in [0, 1]."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    bunch = load_digits()
    x = (bunch.images[:, None, :, :] / 16.0).astype(np.float32)  # pixel values are 0..16
    return RawData(x=x, y=bunch.target.astype(np.int64), classes=[str(i) for i in range(10)], kind="image")


def not_so_clevr(cfg: DataConfig, seed: int) -> RawData:
    """Not-so-Clevr coordinate classification (Liu et al. 2018).

    One 9x9 square at each of the 3,136 positions of a 64x64 canvas. The input is the (i, j)
    coordinate of the square's centre; the label is that pixel's index ``i * 64 + j`` in the
    flattened canvas (4,096 classes). ``task_split`` fixes the test set: ``uniform`` holds out a
    seeded random 20% of positions; ``quadrant`` holds out every centre with i and j both past
    the middle (> 32, i.e. normalized location > 0.5), as in uber-research/CoordConv.
    """
    centres = np.arange(POSITIONS) + SQUARE // 2  # 4 .. 59
    ii, jj = np.meshgrid(centres, centres, indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    x = np.stack([ii, jj], axis=1).astype(np.float32)
    y = (ii * CANVAS + jj).astype(np.int64)
    if cfg.task_split == "quadrant":
        test_mask = (ii > CANVAS // 2) & (jj > CANVAS // 2)
    else:
        # Its own stream of the seed: data.limit's subset draws default_rng(seed) over the same 3,136
        # examples, and the same permutation would keep test positions only.
        rng = np.random.default_rng([seed, UNIFORM_SPLIT_STREAM])
        test_mask = np.zeros(len(y), dtype=bool)
        test_mask[rng.permutation(len(y))[: round(0.2 * len(y))]] = True
    classes = [f"({i},{j})" for i in range(CANVAS) for j in range(CANVAS)]
    return RawData(x=x, y=y, classes=classes, kind="vector", named_classes=True, test_mask=test_mask)
