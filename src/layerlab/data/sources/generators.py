"""Built-in sources: the CS231n spiral, scikit-learn's 8x8 digits and Not-so-Clevr (coordinate classification
and regression)."""

from __future__ import annotations

import numpy as np

from layerlab.data.config import DataConfig
from layerlab.data.sources.base import RawData

SPIRAL_DEFAULTS = {"classes": 3, "points_per_class": 100, "noise": 0.2}

CANVAS = 64  # Not-so-Clevr canvas side, in pixels
SQUARE = 9  # side of the square; its centre is 4 pixels in from its top-left corner
POSITIONS = CANVAS - SQUARE + 1  # 56 positions per axis, 3,136 in all
COORDINATE_NAMES = ("i", "j")  # the regression targets: row and column of the centre, over 64
UNIFORM_SPLIT_STREAM = 0x4E53  # derives the uniform task split's seed from the experiment seed


def spiral(cfg: DataConfig, seed: int) -> RawData:
    """CS231n's spiral: ``classes`` arms of ``points_per_class`` 2-d points, angle noise ``noise``."""
    # None means the default; 0 is refused by the config's limits, never replaced here
    classes = SPIRAL_DEFAULTS["classes"] if cfg.classes is None else cfg.classes
    per_class = SPIRAL_DEFAULTS["points_per_class"] if cfg.points_per_class is None else cfg.points_per_class
    # data.noise as a mapping corrupts the inputs (denoising); only a number is the spiral's angle noise
    noise = cfg.noise if isinstance(cfg.noise, float) else SPIRAL_DEFAULTS["noise"]
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
    """Not-so-Clevr coordinate classification or regression (Liu et al. 2018).

    One 9x9 square at each of the 3,136 positions of a 64x64 canvas. With ``target: index``
    (classification) the input is the (i, j) coordinate of the square's centre (row i, column j)
    and the label is that pixel's index ``i * 64 + j`` in the flattened canvas (4,096 classes).
    With ``target: coordinates`` (regression, the paper's inverse task) the input is the one-hot
    64x64 image of the centre pixel (uint8, 255 there: the official code's ``onehots``, not the
    rendered square) and the target is ``(i, j) / 64``, the official normalized location.
    ``task_split`` fixes the test set, the same positions for both targets: ``uniform`` holds out
    a seeded random 20% of positions; ``quadrant`` holds out every centre with i and j both past
    the middle (> 32, i.e. normalized location > 0.5), as in uber-research/CoordConv.
    """
    centres = np.arange(POSITIONS) + SQUARE // 2  # 4 .. 59
    ii, jj = np.meshgrid(centres, centres, indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    test_mask = _not_so_clevr_test_mask(cfg, seed, ii, jj)
    if cfg.target == "coordinates":
        return _not_so_clevr_regression(ii, jj, test_mask)
    x = np.stack([ii, jj], axis=1).astype(np.float32)
    y = (ii * CANVAS + jj).astype(np.int64)
    classes = [f"({i},{j})" for i in range(CANVAS) for j in range(CANVAS)]
    return RawData(x=x, y=y, classes=classes, kind="vector", named_classes=True, test_mask=test_mask)


def _not_so_clevr_regression(ii: np.ndarray, jj: np.ndarray, test_mask: np.ndarray) -> RawData:
    """The one-hot centre images ``(N, 1, 64, 64)`` (uint8, 12.8 MB) and targets ``(i, j) / 64``."""
    x = np.zeros((len(ii), 1, CANVAS, CANVAS), dtype=np.uint8)
    x[np.arange(len(ii)), 0, ii, jj] = 255
    y = (np.stack([ii, jj], axis=1) / np.float32(CANVAS)).astype(np.float32)
    return RawData(
        x=x, y=y, classes=list(COORDINATE_NAMES), kind="image", named_classes=True, test_mask=test_mask
    )


def _not_so_clevr_test_mask(cfg: DataConfig, seed: int, ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
    """Which positions are held out for test by ``cfg.task_split``."""
    if cfg.task_split == "quadrant":
        test_mask = (ii > CANVAS // 2) & (jj > CANVAS // 2)
    else:
        # Its own stream of the seed: data.limit's subset draws default_rng(seed) over the same 3,136
        # examples, and the same permutation would keep test positions only.
        rng = np.random.default_rng([seed, UNIFORM_SPLIT_STREAM])
        test_mask = np.zeros(len(ii), dtype=bool)
        test_mask[rng.permutation(len(ii))[: round(0.2 * len(ii))]] = True
    return test_mask
