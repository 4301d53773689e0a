"""Splits: stratified random, ordered by natural file name, group-wise; stratified limits."""

from __future__ import annotations

import numpy as np
import pytest

from layerlab.core.errors import DataError
from layerlab.data.config import SplitConfig
from layerlab.data.splits import fixed_test_split, split_indices, stratified_subset


def labels(counts):
    return np.concatenate([np.full(n, c) for c, n in enumerate(counts)]).astype(np.int64)


def test_random_split_is_stratified_disjoint_and_complete():
    y = labels([40, 20, 100])
    train, val, test = split_indices(y, SplitConfig(method="random", val=0.1, test=0.2), seed=0)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(y)))
    assert np.bincount(y[test]).tolist() == [8, 4, 20]
    assert np.bincount(y[val]).tolist() == [4, 2, 10]


def test_random_split_is_seeded():
    y = labels([30, 30])
    cfg = SplitConfig(method="random", val=0.2, test=0.2)
    a, b, c = split_indices(y, cfg, seed=1), split_indices(y, cfg, seed=1), split_indices(y, cfg, seed=2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(a[2], c[2])


def test_ordered_split_uses_natural_file_order_across_classes():
    # file numbers run across classes; IMG_9 must come before IMG_10 (natural, not text, order)
    paths = [f"{n % 3}/IMG_{n}.JPG" for n in range(1, 21)]
    shuffled = np.random.default_rng(0).permutation(20)
    paths = [paths[i] for i in shuffled]
    y = np.array([int(p[0]) for p in paths])
    train, val, test = split_indices(
        y, SplitConfig(method="ordered", val=0.2, test=0.25), seed=0, paths=paths
    )
    number = [int(p.split("_")[1].split(".")[0]) for p in paths]
    assert [number[i] for i in test] == list(range(16, 21))
    assert [number[i] for i in val] == list(range(12, 16))
    assert [number[i] for i in train] == list(range(1, 12))


def test_ordered_split_without_paths_keeps_stored_order():
    train, val, test = split_indices(labels([5, 5]), SplitConfig(method="ordered", val=0.2, test=0.2), seed=0)
    assert train.tolist() == [0, 1, 2, 3, 4, 5] and val.tolist() == [6, 7] and test.tolist() == [8, 9]


def test_group_split_keeps_groups_apart():
    paths = [f"{c}/person{p}_{k}.png" for p in range(10) for c in range(2) for k in range(3)]
    y = np.array([int(p[0]) for p in paths])
    cfg = SplitConfig(method="group", val=0.2, test=0.2, group_pattern=r"person(\d+)_")
    parts = split_indices(y, cfg, seed=0, paths=paths)
    people = [{paths[i].split("/")[1].split("_")[0] for i in part} for part in parts]
    assert people[0] and people[1] and people[2]
    assert not (people[0] & people[1]) and not (people[0] & people[2]) and not (people[1] & people[2])
    assert sum(len(p) for p in parts) == len(paths)
    again = split_indices(y, cfg, seed=0, paths=paths)
    assert all(np.array_equal(p, q) for p, q in zip(parts, again, strict=True))


def test_group_split_errors():
    cfg = SplitConfig(method="group", val=0.2, test=0.2, group_pattern=r"person(\d+)")
    with pytest.raises(DataError, match="does not match 'a/x.png'"):
        split_indices(np.array([0]), cfg, seed=0, paths=["a/x.png"])
    with pytest.raises(DataError, match="needs file paths"):
        split_indices(np.array([0]), cfg, seed=0, paths=None)


def test_split_that_leaves_no_training_data_is_an_error():
    with pytest.raises(DataError, match="nothing to train on"):
        split_indices(labels([2]), SplitConfig(method="ordered", val=0.5, test=0.45), seed=0)


def test_zero_fractions_give_empty_sides():
    train, val, test = split_indices(labels([5, 5]), SplitConfig(method="random", val=0.0, test=0.0), seed=0)
    assert len(train) == 10 and len(val) == 0 and len(test) == 0


def test_stratified_subset_keeps_class_shares_and_is_seeded():
    y = labels([600, 300, 100])
    keep = stratified_subset(y, 100, seed=0)
    assert len(keep) == 100 and np.bincount(y[keep]).tolist() == [60, 30, 10]
    assert np.array_equal(keep, stratified_subset(y, 100, seed=0))
    assert np.array_equal(keep, np.sort(keep))
    assert len(stratified_subset(y, 5000, seed=0)) == 1000


def test_fixed_test_split_carves_validation_from_train():
    mask = np.zeros(100, dtype=bool)
    mask[80:] = True
    train, val, test = fixed_test_split(mask, 0.25, seed=0)
    assert test.tolist() == list(range(80, 100)) and len(val) == 20 and len(train) == 60
    assert not set(val.tolist()) & set(test.tolist())
