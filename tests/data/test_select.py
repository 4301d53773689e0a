"""data.select (classes, a range in file order), data.label_noise and data.ignore_columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from layerlab.core.configtree import from_mapping
from layerlab.core.errors import ConfigError, DataError
from layerlab.data.config import DataConfig
from layerlab.data.prepare import held_out_examples, prepare_data
from layerlab.data.select import noisy_labels
from layerlab.data.signature import config_signature


def data(**fields):
    return from_mapping(DataConfig, fields, "data")


def test_select_keeps_classes_renumbered_and_disjoint_file_ranges(image_folder, cache_dir):
    halves = []
    for window in ([0.0, 0.5], [0.5, 1.0]):
        cfg = data(
            source="imagefolder",
            path=str(image_folder),
            select={"classes": ["b", "a"], "range": window},
            split={"method": "ordered", "val": 0.0, "test": 0.0},
            normalize="none",
        )
        prepared = prepare_data(cfg, seed=0, cache_dir=cache_dir)
        assert prepared.classes == ["b", "a"] and config_signature(cfg)[1] == 2
        x = prepared.train_x.materialize().numpy().reshape(len(prepared.train_y), -1)[:, 0]
        shades = np.round(x * 255).astype(int)
        assert all(
            (s >= 200) == (label == 0) for s, label in zip(shades, prepared.train_y.tolist(), strict=True)
        )
        halves.append(set(prepared.train_index.tolist()))
        assert prepared.source_examples == 20 and len(prepared.train_y) == 10
    assert not halves[0] & halves[1] and len(halves[0] | halves[1]) == 20
    # img_0 .. img_9 (natural file order) are the first half
    assert halves[0] == set(range(5)) | set(
        range(10, 15)
    )  # a: 0,2,..,8 -> rows 0-4; b: 1,3,..,9 -> rows 10-14


def test_select_applies_to_the_held_out_examples_too(image_folder, cache_dir):
    cfg = data(
        source="imagefolder",
        path=str(image_folder),
        select={"classes": ["a"] * 1 + ["b"], "range": [0.5, 1.0]},
    )
    prepared = prepare_data(cfg, seed=0, cache_dir=cache_dir)
    held = held_out_examples(cfg, seed=0, positions=range(len(prepared.test_y)), cache_dir=cache_dir)
    assert held.y.tolist() == prepared.test_y.tolist()
    assert all(int(p.split("_")[1].split(".")[0]) >= 10 for p in held.paths)


def test_bad_selections_are_one_line_each(image_folder, cache_dir):
    with pytest.raises(ConfigError, match="keeps 1 class"):
        data(select={"classes": ["a"]})
    with pytest.raises(ConfigError, match="from < to"):
        data(select={"range": [0.6, 0.2]})
    with pytest.raises(ConfigError, match=r"range\[1\] must be in \[0, 1\]"):
        data(select={"range": [0.0, 1.5]})
    with pytest.raises(DataError, match="names 'c', which is not a class of the source \\(a, b\\)"):
        prepare_data(
            data(source="imagefolder", path=str(image_folder), select={"classes": ["a", "c"]}),
            seed=0,
            cache_dir=cache_dir,
        )


def test_label_noise_changes_that_fraction_of_training_labels_only_and_is_seeded():
    y = np.arange(1000) % 10
    noisy = noisy_labels(y, 0.3, 10, seed=4)
    assert (noisy != y).sum() == 300 and noisy_labels(y, 0.3, 10, seed=4).tolist() == noisy.tolist()
    assert noisy_labels(y, 0.3, 10, seed=5).tolist() != noisy.tolist()
    clean = prepare_data(data(source="digits"), seed=1)
    dirty = prepare_data(data(source="digits", label_noise=0.5), seed=1)
    changed = (clean.train_y != dirty.train_y).float().mean().item()
    assert changed == pytest.approx(0.5, abs=0.01)
    assert clean.test_y.tolist() == dirty.test_y.tolist() and clean.val_y.tolist() == dirty.val_y.tolist()
    with pytest.raises(ConfigError, match="label_noise must be in"):
        data(label_noise=1.0)


def test_ignore_columns_leaves_a_csv_column_out_of_the_features(tmp_path):
    (tmp_path / "t.csv").write_text(
        "a,b,note,label\n" + "".join(f"{i},{i * 2},{i % 3},{i % 2}\n" for i in range(12))
    )
    cfg = data(source="csv", path=str(tmp_path / "t.csv"), ignore_columns=["note"], label_column="label")
    assert prepare_data(cfg, seed=0, cache_dir=tmp_path / "c").input_shape == (2,)
    with pytest.raises(DataError, match="no column 'nope' to ignore"):
        prepare_data(data(source="csv", path=str(tmp_path / "t.csv"), ignore_columns=["nope"]), seed=0)
    with pytest.raises(ConfigError, match="ignore_columns applies to csv sources"):
        data(source="digits", ignore_columns=["x"])


SIGN = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "sign-language-digits" / "Dataset"


@pytest.mark.slow
@pytest.mark.skipif(not SIGN.is_dir(), reason=f"sign-language folder not found at {SIGN}")
def test_sign_language_halves_are_other_people_and_other_digits(tmp_path):
    """The transfer case: digits 0-4 of the first half of the people, 5-9 of the other half (docs/transfer.md)."""

    def half(classes, window):
        cfg = data(
            source="imagefolder", path=str(SIGN), size=[16, 16], select={"classes": classes, "range": window}
        )
        held = held_out_examples(cfg, seed=0, positions=range(10_000), cache_dir=tmp_path)
        prepared = prepare_data(cfg, seed=0, cache_dir=tmp_path)
        return prepared, held

    source, source_test = half([str(d) for d in range(5)], [0.0, 0.5])
    target, target_test = half([str(d) for d in range(5, 10)], [0.5, 1.0])
    number = lambda path: int(path.rsplit("_", 1)[1].split(".")[0])  # noqa: E731
    assert max(number(p) for p in source_test.paths) < min(number(p) for p in target_test.paths)
    assert source.classes == ["0", "1", "2", "3", "4"] and target.classes == ["5", "6", "7", "8", "9"]
    assert 700 < source.source_examples == target.source_examples == 1649
    assert set(source.train_index.tolist()).isdisjoint(target.train_index.tolist())
