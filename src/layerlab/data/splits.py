"""Train / validation / test splits (random stratified, ordered, group) and stratified limits."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

import numpy as np

from layerlab.core.errors import DataError
from layerlab.data.config import SplitConfig
from layerlab.data.sources.base import natural_key

Split = tuple[np.ndarray, np.ndarray, np.ndarray]  # train, val, test indices


def stratified_subset(y: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most ``limit`` indices, each class keeping its share; returned in ascending order.

    Args:
        y: class index of every example.
        limit: how many to keep.
        seed: which examples of each class are kept.
    """
    n = len(y)
    if limit >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    counts = np.bincount(y)
    # rank of each example within its class (in the shuffled order), as a fraction of the class:
    # taking the smallest fractions first interleaves the classes in proportion to their sizes.
    rank = np.empty(n, dtype=np.int64)
    seen = np.zeros(len(counts), dtype=np.int64)
    for i in order:
        rank[i] = seen[y[i]]
        seen[y[i]] += 1
    share = (rank + 0.5) / counts[y]
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    keep = np.lexsort((position, share))[:limit]
    return np.sort(keep)


def _check(split: Split, n: int, method: str) -> Split:
    if len(split[0]) == 0:
        raise DataError(
            f"the {method} split of {n} examples leaves nothing to train on",
            hint="lower data.split.val / data.split.test, or bring more examples",
        )
    return split


def random_split(y: np.ndarray, val: float, test: float, seed: int) -> Split:
    """Stratified: every class is split with the same fractions; seeded."""
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(len(members) * test))
        n_val = int(round(len(members) * val))
        if n_test + n_val >= len(members):  # a tiny class keeps at least one training example
            n_val = max(0, len(members) - 1 - n_test)
            n_test = min(n_test, len(members) - 1)
        parts[2].append(members[:n_test])
        parts[1].append(members[n_test : n_test + n_val])
        parts[0].append(members[n_test + n_val :])
    train, val_idx, test_idx = (np.sort(np.concatenate(p)).astype(np.int64) for p in parts)
    return _check((train, val_idx, test_idx), len(y), "random")


def ordered_split(n: int, val: float, test: float, paths: Sequence[str] | None) -> Split:
    """Natural file-name order (``IMG_99`` before ``IMG_100``) across classes; the tail is held out.

    Test is the last ``test`` fraction, validation the ``val`` fraction before it. Without file
    paths the stored order is used.
    """
    if paths is None:
        order = np.arange(n)
    else:
        order = np.array(
            sorted(
                range(n), key=lambda i: (natural_key(posixpath.basename(paths[i])), natural_key(paths[i]))
            ),
            dtype=np.int64,
        )
    n_test = int(round(n * test))
    n_val = int(round(n * val))
    cut_test, cut_val = n - n_test, n - n_test - n_val
    return _check((order[:cut_val], order[cut_val:cut_test], order[cut_test:]), n, "ordered")


def group_of(paths: Sequence[str], pattern: str) -> list[str]:
    """The group of every path: the regex's first capture (or whole match), searched in the relative path."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise DataError(
            f"group_pattern '{pattern}' is not a valid regex: {exc}", where="data.split"
        ) from None
    groups = []
    for path in paths:
        match = regex.search(path)
        if match is None:
            raise DataError(
                f"group_pattern '{pattern}' does not match '{path}'",
                hint="the pattern is searched in the path relative to data.path, e.g. '3/IMG_1118.JPG'",
                where="data.split.group_pattern",
            )
        groups.append(match.group(1) if regex.groups else match.group(0))
    return groups


def group_split(paths: Sequence[str] | None, pattern: str, val: float, test: float, seed: int) -> Split:
    """Whole groups go to one side: shuffled (seeded), test filled first, then validation."""
    if paths is None:
        raise DataError(
            "split method 'group' needs file paths; this source has none",
            hint="use split method random or ordered",
            where="data.split.method",
        )
    groups = np.array(group_of(paths, pattern))
    names = sorted(set(groups.tolist()), key=natural_key)
    rng = np.random.default_rng(seed)
    n = len(paths)
    target_test, target_val = round(n * test), round(n * val)
    sides: dict[str, int] = {}
    filled = [0, 0, 0]
    for g in rng.permutation(len(names)):
        name = names[g]
        size = int((groups == name).sum())
        side = 2 if filled[2] < target_test else 1 if filled[1] < target_val else 0
        sides[name] = side
        filled[side] += size
    side_of = np.array([sides[g] for g in groups.tolist()])
    split = tuple(np.flatnonzero(side_of == s).astype(np.int64) for s in (0, 1, 2))
    return _check(split, n, "group")  # type: ignore[arg-type]


def split_indices(
    y: np.ndarray, split: SplitConfig, *, seed: int, paths: Sequence[str] | None = None
) -> Split:
    """Indices of train, validation and test for the configured method.

    Args:
        y: class index of every example.
        split: method and fractions.
        seed: for random and group splits.
        paths: relative file paths (ordered and group splits use them).
    """
    if split.method == "random":
        return random_split(y, split.val, split.test, seed)
    if split.method == "ordered":
        return ordered_split(len(y), split.val, split.test, paths)
    return group_split(paths, split.group_pattern or "", split.val, split.test, seed)


def fixed_test_split(test_mask: np.ndarray, val: float, seed: int) -> Split:
    """Test is given (not-so-clevr's task split); validation is a seeded ``val`` fraction of the rest."""
    rest = np.flatnonzero(~test_mask)
    shuffled = np.random.default_rng(seed).permutation(rest)
    n_val = int(round(len(rest) * val))
    split = (np.sort(shuffled[n_val:]), np.sort(shuffled[:n_val]), np.flatnonzero(test_mask))
    return _check(split, len(test_mask), "task")
