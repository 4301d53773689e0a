"""prepare_data, input_signature and load_evaluation_data: the contracts the trainer relies on."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from data_helpers import write_image

from layerlab.core.errors import DataError
from layerlab.data.config import DataConfig, SplitConfig
from layerlab.data.prepare import input_signature, load_evaluation_data, prepare_data
from layerlab.data.views import as_tensor


def test_spiral_tensors_and_report():
    data = prepare_data(DataConfig(), seed=0)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert data.input_shape == (2,) and data.classes == ["0", "1", "2"]
    assert data.report.totals == {"train": 210, "val": 45, "test": 45}
    assert data.report.counts["test"] == {"0": 15, "1": 15, "2": 15}
    assert data.report.cache == "off"
    assert set(data.report.to_dict()) >= {"counts", "skipped", "cache", "seconds", "totals"}


def test_normalization_statistics_come_from_train_only():
    data = prepare_data(DataConfig(split=SplitConfig(val=0.2, test=0.3)), seed=0)
    assert data.train_x.mean(0).abs().max().item() < 1e-5
    assert torch.allclose(data.train_x.std(0, unbiased=False), torch.ones(2), atol=1e-4)
    # val and test are transformed with train's statistics, so theirs are not exactly 0 / 1
    assert data.test_x.mean(0).abs().max().item() > 1e-4


def test_zero_fractions_give_empty_tensors_with_the_right_shape():
    data = prepare_data(DataConfig(source="digits", split=SplitConfig(val=0.0, test=0.0)), seed=0)
    assert data.val_x.shape == (0, 1, 8, 8) and data.test_y.shape == (0,)
    assert len(data.train_x) == 1797


def test_limit_is_stratified():
    data = prepare_data(DataConfig(source="digits", limit=200, split=SplitConfig(val=0.0, test=0.0)), seed=0)
    assert len(data.train_y) == 200
    assert set(torch.bincount(data.train_y).tolist()) <= {19, 20, 21}


def test_not_so_clevr_quadrant_split_comes_from_task_split():
    cfg = DataConfig(source="not-so-clevr", task_split="quadrant", split=SplitConfig(val=0.1, test=0.5))
    data = prepare_data(cfg, seed=0)
    assert len(data.test_y) == 729 and len(data.val_y) == round(0.1 * (3136 - 729))
    raw_i = (data.test_y // 64).numpy()
    raw_j = (data.test_y % 64).numpy()
    assert raw_i.min() > 32 and raw_j.min() > 32
    assert input_signature(cfg) == ((2,), 4096)


def test_cache_hit_returns_identical_arrays(image_folder, cache_dir):
    cfg = DataConfig(source="imagefolder", path=str(image_folder), size=[8, 8])
    first = prepare_data(cfg, seed=0, cache_dir=cache_dir)
    second = prepare_data(cfg, seed=0, cache_dir=cache_dir)
    assert first.report.cache == "miss" and second.report.cache == "hit"
    for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        assert torch.equal(as_tensor(getattr(first, name)), as_tensor(getattr(second, name)))
    assert second.preprocessing == first.preprocessing
    assert len(os.listdir(cache_dir)) == 1  # one entry, no temporary folder left behind


def test_cache_misses_when_a_file_or_an_option_changes(image_folder, cache_dir):
    cfg = DataConfig(source="imagefolder", path=str(image_folder), size=[8, 8])
    prepare_data(cfg, seed=0, cache_dir=cache_dir)
    write_image(image_folder / "a" / "img_100.png", 10)
    assert prepare_data(cfg, seed=0, cache_dir=cache_dir).report.cache == "miss"
    cfg.size = [6, 6]
    again = prepare_data(cfg, seed=0, cache_dir=cache_dir)
    assert again.report.cache == "miss" and again.input_shape == (1, 6, 6)


def test_corrupt_cache_entry_is_rebuilt(image_folder, cache_dir):
    cfg = DataConfig(source="imagefolder", path=str(image_folder), size=[8, 8])
    prepare_data(cfg, seed=0, cache_dir=cache_dir)
    entry = next(cache_dir.iterdir())
    (entry / "x.npy").write_bytes(b"garbage")
    assert prepare_data(cfg, seed=0, cache_dir=cache_dir).report.cache == "miss"


def test_skipped_files_reach_the_report(image_folder, cache_dir):
    (image_folder / "a" / "broken.png").write_bytes(b"\x89PNG broken")
    data = prepare_data(DataConfig(source="imagefolder", path=str(image_folder)), seed=0, cache_dir=cache_dir)
    assert [p for p, _ in data.report.skipped] == ["a/broken.png"]
    assert data.report.to_dict()["skipped"][0]["path"] == "a/broken.png"


def test_input_signature_without_decoding(image_folder, tmp_path):
    assert input_signature(DataConfig()) == ((2,), 3)
    assert input_signature(DataConfig(classes=4)) == ((2,), 4)
    assert input_signature(DataConfig(source="digits")) == ((1, 8, 8), 10)
    (image_folder / "a" / "broken.png").write_bytes(b"never decoded here")
    cfg = DataConfig(source="imagefolder", path=str(image_folder), channels=3, size=[32, 16])
    assert input_signature(cfg) == ((3, 32, 16), 2)
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 5)), Y=np.eye(3)[[0, 1, 2, 0]])
    assert input_signature(DataConfig(source="npz", path=str(tmp_path / "d.npz"))) == ((5,), 3)


def test_evaluation_data_uses_the_runs_statistics_and_classes(image_folder, tmp_path, cache_dir):
    run = prepare_data(
        DataConfig(source="imagefolder", path=str(image_folder), size=[8, 8]), seed=0, cache_dir=cache_dir
    )
    new = tmp_path / "new"
    write_image(new / "b" / "one.jpg", 230, size=(30, 30))  # another size: decoded with the run's 8x8
    write_image(new / "a" / "two.jpg", 45, size=(30, 30))
    x, y, classes = load_evaluation_data(f"imagefolder:{new}", run.preprocessing, cache_dir=cache_dir)
    assert classes == ["a", "b"] and x.shape == (2, 1, 8, 8)
    assert y.tolist() == [0, 1]
    prep = run.preprocessing
    assert x[1].mean().item() == pytest.approx((230 / 255 - prep.mean[0]) / prep.std[0], abs=0.05)


def test_evaluation_data_with_fewer_classes_maps_by_name(image_folder, tmp_path, cache_dir):
    run = prepare_data(
        DataConfig(source="imagefolder", path=str(image_folder), size=[8, 8]), seed=0, cache_dir=cache_dir
    )
    write_image(tmp_path / "only_b" / "b" / "x.png", 220)
    _, y, _ = load_evaluation_data(
        f"imagefolder:{tmp_path / 'only_b'}", run.preprocessing, cache_dir=cache_dir
    )
    assert y.tolist() == [1]


def test_evaluation_class_unknown_to_the_run_is_an_error(image_folder, tmp_path, cache_dir):
    run = prepare_data(
        DataConfig(source="imagefolder", path=str(image_folder), size=[8, 8]), seed=0, cache_dir=cache_dir
    )
    write_image(tmp_path / "other" / "zebra" / "x.png", 10)
    with pytest.raises(DataError, match="class 'zebra' is not one of the run's classes"):
        load_evaluation_data(f"imagefolder:{tmp_path / 'other'}", run.preprocessing, cache_dir=cache_dir)


def test_evaluation_from_generator_and_yaml_file(tmp_path):
    run = prepare_data(DataConfig(source="digits"), seed=0)
    x, y, _ = load_evaluation_data("digits:", run.preprocessing)
    assert x.shape == (1797, 1, 8, 8) and len(y) == 1797
    config = tmp_path / "exp.yaml"
    config.write_text("seed: 1\ndata:\n  source: spiral\n  points_per_class: 10\n")
    spiral_run = prepare_data(DataConfig(points_per_class=10), seed=1)
    x, y, classes = load_evaluation_data(str(config), spiral_run.preprocessing)
    assert x.shape == (30, 2) and classes == ["0", "1", "2"]
    with pytest.raises(DataError, match="runs take|takes|gives"):
        load_evaluation_data("spiral:", run.preprocessing)
    with pytest.raises(DataError, match="did you mean 'digits:'"):
        load_evaluation_data("digit:", run.preprocessing)


def test_config_rejects_bad_limit_and_pattern():
    from layerlab.core.configtree import from_mapping
    from layerlab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="data.limit"):
        from_mapping(DataConfig, {"limit": 0}, "data")
    with pytest.raises(ConfigError, match="data.split.group_pattern"):
        from_mapping(DataConfig, {"split": {"method": "group", "group_pattern": "(unclosed"}}, "data")


# --- a data path one folder too high, one class, empty classes (issue 7, item 3) ----------------------


def test_data_path_one_folder_too_high_is_an_error_naming_the_right_folder(image_folder, cache_dir):
    # photos/ is the class root; its parent holds one folder: one class, "100%" accuracy before
    cfg = DataConfig(source="imagefolder", path=str(image_folder.parent), size=[8, 8])
    with pytest.raises(DataError) as info:
        prepare_data(cfg, seed=0, cache_dir=cache_dir)
    message = info.value.one_line()
    assert "holds only folders (a, b)" in message
    assert f"data.path={image_folder}" in message
    with pytest.raises(DataError, match="one folder too high"):
        input_signature(cfg)  # known before decoding too


def test_split_folders_above_the_classes_are_an_error(image_folder, tmp_path, cache_dir):
    root = tmp_path / "splits"
    for split in ("train", "val"):
        for label, value in (("cat", 30), ("dog", 220)):
            write_image(root / split / label / "1.png", value)
    with pytest.raises(DataError, match=r"train, val of .* hold only folders \(cat, dog\)"):
        prepare_data(DataConfig(source="imagefolder", path=str(root)), seed=0, cache_dir=cache_dir)


def test_one_class_or_an_empty_class_folder_is_an_error(tmp_path, cache_dir):
    root = tmp_path / "one"
    for n in range(4):
        write_image(root / "cat" / f"{n}.png", 10 * n)
    with pytest.raises(DataError, match=r"gives one class \(cat\); a classifier needs at least 2"):
        prepare_data(DataConfig(source="imagefolder", path=str(root)), seed=0, cache_dir=cache_dir)
    (root / "dog").mkdir()
    (root / "dog" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="1 class folder\\(s\\) hold no image that could be decoded: dog"):
        prepare_data(DataConfig(source="imagefolder", path=str(root)), seed=0, cache_dir=cache_dir)


def test_arrays_with_one_label_are_an_error(tmp_path, cache_dir):
    np.savez(tmp_path / "d.npz", X=np.zeros((6, 3), dtype=np.float32), y=np.zeros(6, dtype=np.int64))
    with pytest.raises(DataError, match="gives one class"):
        prepare_data(DataConfig(source="npz", path=str(tmp_path / "d.npz")), seed=0, cache_dir=cache_dir)


# --- the cache is keyed by content (item 16) -----------------------------------------------------------


def test_cache_serves_new_pixels_when_size_and_mtime_are_kept(tmp_path, cache_dir):
    root = tmp_path / "bmp"
    for label, value in (("a", 10), ("b", 200)):
        for n in range(3):
            write_image(root / label / f"{n}.bmp", value)
    cfg = DataConfig(source="imagefolder", path=str(root), size=[10, 12], normalize="none")
    split = SplitConfig(val=0.0, test=0.0)
    cfg.split = split
    first = prepare_data(cfg, seed=0, cache_dir=cache_dir)
    target = root / "a" / "0.bmp"
    stat = target.stat()
    write_image(target, 99)  # other pixels, same size (BMP), then the old mtime back
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_size == stat.st_size and target.stat().st_mtime_ns == stat.st_mtime_ns
    second = prepare_data(cfg, seed=0, cache_dir=cache_dir)
    assert first.report.cache == "miss" and second.report.cache == "miss"
    values = sorted({round(v * 255) for v in as_tensor(second.train_x).flatten().tolist()})
    assert 99 in values and 10 in values
    assert prepare_data(cfg, seed=0, cache_dir=cache_dir).report.cache == "hit"


# --- Not-so-Clevr's subset and task split draw independent seeds (item 18) ------------------------------


@pytest.mark.parametrize("limit", [30, 300, 600])
def test_not_so_clevr_small_limits_keep_training_examples(limit):
    data = prepare_data(DataConfig(source="not-so-clevr", limit=limit), seed=0)
    total = len(data.train_y) + len(data.val_y) + len(data.test_y)
    assert total == limit
    assert 0.1 < len(data.test_y) / limit < 0.35  # about the 20% uniform share, not all of it
    assert len(data.train_y) > limit // 2


# --- numbers checked where they are read (item 12) -----------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        ({"classes": 1}, "classes must be in"),
        ({"classes": 0}, "classes must be in"),
        ({"points_per_class": 0}, "points_per_class must be in"),
        ({"points_per_class": 1e9}, "expected an integer"),
        ({"augment": {"rotate": -10}}, "rotate must be in"),
        ({"augment": {"brightness": 1.5}}, "brightness must be in"),
        ({"augment": {"shift": -1}}, "shift must be in"),
        (
            {"source": "imagefolder", "path": "x", "size": [32, 32], "augment": {"crop": 16}},
            "nothing is left",
        ),
        ({"source": "imagefolder", "path": "x", "size": [10**6, 10]}, "size"),
        ({"noise": float("nan")}, "finite"),
        ({"split": {"val": -0.1}}, "val must be in"),
        ({"label_map": {"a": -1}}, "label_map.a must be at least 0"),
        ({"limit": 0}, "limit must be at least 1"),
        ({"class_names": ["only"]}, "at least 2"),
        ({"layout": "sequence"}, "layout applies to array sources"),
    ],
)
def test_data_config_refuses_harmful_values(data, message):
    from layerlab.core.configtree import from_mapping
    from layerlab.core.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        from_mapping(DataConfig, data, "data")


def test_nan_inputs_are_refused_with_the_count_and_first_example(tmp_path):
    x = np.ones((10, 3), dtype=np.float32)
    x[4, 1] = np.nan
    x[7, 0] = np.inf
    np.savez(tmp_path / "d.npz", X=x, y=np.arange(10) % 2)
    with pytest.raises(DataError, match="2 NaN or infinite value\\(s\\), the first in example 4"):
        prepare_data(DataConfig(source="npz", path=str(tmp_path / "d.npz")), seed=0, cache_dir=tmp_path / "c")


def test_a_text_file_named_npz_is_not_an_npz_archive(tmp_path):
    (tmp_path / "d.npz").write_text("a,b\n1,2\n")
    with pytest.raises(DataError) as info:
        prepare_data(DataConfig(source="npz", path=str(tmp_path / "d.npz")), seed=0, cache_dir=tmp_path / "c")
    assert "'d.npz' is not an npz archive" in info.value.one_line()
    assert "allow_pickle" not in info.value.one_line()
