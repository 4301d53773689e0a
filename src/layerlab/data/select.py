"""Choosing part of a source before the split, and corrupting training labels on purpose.

``data.select`` keeps some classes and/or a range of the examples in natural file order::

    data:
      select: {classes: ["0", "1", "2", "3", "4"], range: [0.0, 0.5]}

``range`` is taken over every example of the source in the order the ``ordered`` split uses (file
name, natural order, across classes), before ``classes`` narrows them: two configs with the ranges
[0, 0.5] and [0.5, 1] see disjoint examples. For photos numbered in the order they were taken (one
person after another, as in the sign-language digits) that is a split by person; at most the one
person at the cut is shared. The kept classes are renumbered 0..K-1 in the order given.

``data.label_noise`` replaces that fraction of the *training* labels by another class drawn
uniformly (seeded by the experiment seed); validation and test labels stay clean, so the test
accuracy still measures the true task (the noisy-label setting of Wu, Dyer & Neyshabur 2021).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING

from layerlab.core.configtree import setting
from layerlab.core.errors import ConfigError, DataError

if TYPE_CHECKING:  # numpy is imported where it is used: the config classes stay light
    import numpy as np


@dataclass
class SelectConfig:
    """Which classes and which part (in natural file order) of a source a run uses."""

    classes: list[str] | None = None  # class names kept, renumbered in this order
    range: list[float] | None = setting(
        None, help="[from, to]: fractions of the examples in natural file order", minimum=0.0, maximum=1.0
    )

    def validate(self, where: str) -> None:
        if self.classes is not None:
            if len(self.classes) < 2:
                raise ConfigError(
                    f"select.classes keeps {len(self.classes)} class(es); a classifier needs at least 2",
                    where=f"{where}.classes",
                )
            if len(set(self.classes)) != len(self.classes):
                raise ConfigError("select.classes names a class twice", where=f"{where}.classes")
        if self.range is not None and (len(self.range) != 2 or self.range[0] >= self.range[1]):
            raise ConfigError(
                f"select.range must be [from, to] with from < to, got {self.range}",
                hint="e.g. range: [0.0, 0.5]",
                where=f"{where}.range",
            )


def file_order(n: int, paths) -> np.ndarray:
    """Example indices in natural file-name order across classes (the stored order without paths)."""
    import numpy as np

    from layerlab.data.sources.base import natural_key

    if paths is None:
        return np.arange(n, dtype=np.int64)
    keys = sorted(range(n), key=lambda i: (natural_key(posixpath.basename(paths[i])), natural_key(paths[i])))
    return np.array(keys, dtype=np.int64)


def selection(
    y: np.ndarray, classes: list[str], paths, cfg: SelectConfig
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(keep, labels, classes)``: the kept examples (ascending), their new labels and class names.

    Raises:
        DataError: a class that is not in the source (naming the ones that are), or nothing kept.
    """
    import numpy as np

    n = len(y)
    keep = np.ones(n, dtype=bool)
    if cfg.range is not None:
        order = file_order(n, paths)
        lo, hi = (int(round(f * n)) for f in cfg.range)
        keep[:] = False
        keep[order[lo:hi]] = True
    names = list(classes)
    mapping = np.arange(len(names), dtype=np.int64)
    if cfg.classes is not None:
        missing = [c for c in cfg.classes if c not in names]
        if missing:
            shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
            raise DataError(
                f"data.select.classes names '{missing[0]}', which is not a class of the source ({shown})",
                where="data.select.classes",
            )
        mapping = np.full(len(names), -1, dtype=np.int64)
        for new, name in enumerate(cfg.classes):
            mapping[names.index(name)] = new
        keep &= mapping[y] >= 0
        names = list(cfg.classes)
    index = np.flatnonzero(keep).astype(np.int64)
    if len(index) == 0:
        raise DataError(
            "data.select keeps no example", hint="widen select.range or select.classes", where="data.select"
        )
    return index, mapping[y[index]], names


def noisy_labels(y: np.ndarray, fraction: float, num_classes: int, seed: int) -> np.ndarray:
    """A copy of ``y`` with ``round(fraction * n)`` labels (chosen with the seed) set to another class."""
    import numpy as np

    y = np.array(y, dtype=np.int64, copy=True)
    count = int(round(fraction * len(y)))
    if count == 0 or num_classes < 2:
        return y
    rng = np.random.default_rng([int(seed), 0x1ABE1])
    chosen = rng.choice(len(y), size=count, replace=False)
    shift = rng.integers(1, num_classes, size=count)  # never the true class
    y[chosen] = (y[chosen] + shift) % num_classes
    return y
