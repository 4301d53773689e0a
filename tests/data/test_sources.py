"""Every source: the built-in generators and the imagefolder, npz/npy and csv importers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_helpers import write_image

from layerlab.core.errors import DataError
from layerlab.data.config import DataConfig
from layerlab.data.sources import load_raw


def raw(**fields):
    return load_raw(DataConfig(**fields), seed=0)


def test_spiral_defaults_and_seed():
    data = raw(source="spiral")
    assert data.x.shape == (300, 2) and data.kind == "vector"
    assert np.bincount(data.y).tolist() == [100, 100, 100]
    assert np.array_equal(load_raw(DataConfig(), seed=3).x, load_raw(DataConfig(), seed=3).x)
    assert not np.array_equal(load_raw(DataConfig(), seed=3).x, load_raw(DataConfig(), seed=4).x)


def test_spiral_options():
    data = raw(source="spiral", classes=5, points_per_class=7, noise=0.0)
    assert data.x.shape == (35, 2) and data.classes == ["0", "1", "2", "3", "4"]
    # without noise the first point of every arm is the centre and the radius grows to 1
    assert np.allclose(np.linalg.norm(data.x[6]), 1.0, atol=1e-6)


def test_digits_are_real_8x8_images():
    data = raw(source="digits")
    assert data.x.shape == (1797, 1, 8, 8) and data.kind == "image"
    assert data.x.min() >= 0.0 and data.x.max() <= 1.0
    assert len(data.classes) == 10


def test_not_so_clevr_coordinates_and_labels():
    data = raw(source="not-so-clevr")
    assert data.x.shape == (3136, 2) and len(data.classes) == 4096
    i, j = data.x[:, 0].astype(int), data.x[:, 1].astype(int)
    assert i.min() == 4 and i.max() == 59  # centres of a 9x9 square on a 64x64 canvas
    assert np.array_equal(data.y, i * 64 + j)
    assert len(set(data.y.tolist())) == 3136
    assert data.test_mask.sum() == round(0.2 * 3136)


def test_not_so_clevr_quadrant_holds_out_bottom_right():
    data = raw(source="not-so-clevr", task_split="quadrant")
    i, j = data.x[:, 0], data.x[:, 1]
    assert np.array_equal(data.test_mask, (i > 32) & (j > 32))
    assert data.test_mask.sum() == 27 * 27


def test_imagefolder_classes_shapes_and_paths(image_folder):
    data = raw(source="imagefolder", path=str(image_folder), size=[8, 6], channels=3)
    assert data.classes == ["a", "b"] and data.x.shape == (20, 3, 8, 6) and data.x.dtype == np.uint8
    assert data.paths[0] == "a/img_0.png" and data.paths[1] == "a/img_2.png"
    assert np.bincount(data.y).tolist() == [10, 10]
    # the gray value survives decoding (class a is dark, class b bright)
    assert data.x[data.y == 0].max() < 100 and data.x[data.y == 1].min() > 150


def test_imagefolder_defaults_to_64x64_grayscale(image_folder):
    data = raw(source="imagefolder", path=str(image_folder))
    assert data.x.shape == (20, 1, 64, 64)


def test_unreadable_images_are_skipped_and_counted(image_folder):
    (image_folder / "a" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (image_folder / "b" / "notes.txt").write_text("hello")
    data = raw(source="imagefolder", path=str(image_folder), size=[8, 8])
    assert len(data.x) == 20
    assert sorted(p for p, _ in data.skipped) == ["a/broken.jpg", "b/notes.txt"]
    assert all(reason for _, reason in data.skipped)


def test_folder_without_class_folders_is_an_error(tmp_path):
    write_image(tmp_path / "loose.png", 10)
    with pytest.raises(DataError, match="no class sub-folders") as exc:
        raw(source="imagefolder", path=str(tmp_path))
    assert "one sub-folder per class" in exc.value.one_line()


def test_empty_class_folders_and_missing_path_are_errors(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError, match="hold no files"):
        raw(source="imagefolder", path=str(tmp_path))
    with pytest.raises(DataError, match="does not exist"):
        raw(source="imagefolder", path=str(tmp_path / "nowhere"))


def test_folder_of_only_broken_files_is_an_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="could be decoded"):
        raw(source="imagefolder", path=str(tmp_path))


# ---- npz / npy -------------------------------------------------------------------------------


def test_npz_vectors_with_labels(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.arange(12, dtype=np.float64).reshape(6, 2), y=np.array([0, 1, 2, 0, 1, 2]))
    data = raw(source="npz", path=str(path))
    assert data.kind == "vector" and data.x.dtype == np.float32 and data.classes == ["0", "1", "2"]


def test_npy_folder_with_one_hot_Y_and_label_map(tmp_path):
    x = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32)  # (N, H, W): grayscale images
    onehot = np.eye(3)[[2, 0, 1, 2]]
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", onehot)
    data = raw(source="npy", path=str(tmp_path))
    assert data.kind == "image" and data.x.shape == (4, 1, 8, 8)
    assert data.y.tolist() == [2, 0, 1, 2]
    # the path of one of the two files works too; the map renames stored labels
    mapped = raw(source="npy", path=str(tmp_path / "X.npy"), label_map={"0": 1, "1": 2, "2": 0})
    assert mapped.y.tolist() == [0, 1, 2, 0]


def test_npz_channels_last_images_are_resized(tmp_path):
    path = tmp_path / "rgb.npz"
    np.savez(path, x=np.zeros((3, 10, 10, 3), dtype=np.uint8), y=np.array([0, 1, 0]))
    data = raw(source="npz", path=str(path), size=[5, 5], channels=1)
    assert data.x.shape == (3, 1, 5, 5) and data.x.dtype == np.uint8


def test_labels_out_of_range_name_file_and_row(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, X=np.zeros((3, 2)), y=np.array([0, 1, 5]))
    with pytest.raises(DataError) as exc:
        raw(source="npz", path=str(path), class_names=["a", "b"])
    assert "bad.npz" in exc.value.one_line() and "row 2" in exc.value.one_line()
    np.savez(path, X=np.zeros((2, 2)), y=np.array([0, -1]))
    with pytest.raises(DataError, match="out of range"):
        raw(source="npz", path=str(path))


def test_bad_one_hot_and_missing_arrays(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((2, 2)), Y=np.array([[1, 1], [0, 1]]))
    with pytest.raises(DataError, match="row 0 is not one-hot"):
        raw(source="npz", path=str(path))
    np.savez(path, inputs=np.zeros((2, 2)))
    with pytest.raises(DataError, match="holds 1 other arrays"):  # counted, never named (file content)
        raw(source="npz", path=str(path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no X\.npy"):
        raw(source="npy", path=str(tmp_path / "empty"))


def test_label_missing_from_label_map(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((2, 2)), y=np.array([0, 7]))
    with pytest.raises(DataError, match="row 1, column .*: the label is not in label_map"):
        raw(source="npz", path=str(path), label_map={"0": 0})


# ---- csv -------------------------------------------------------------------------------------


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_csv_without_header_label_last(tmp_path):
    data = raw(source="csv", path=write(tmp_path / "d.csv", "1,2,0\n3,4,1\n5,6,1\n"))
    assert data.x.tolist() == [[1, 2], [3, 4], [5, 6]] and data.y.tolist() == [0, 1, 1]


def test_csv_with_header_and_named_label_column(tmp_path):
    path = write(tmp_path / "d.csv", "label,a,b\n1,0.5,2\n0,1.5,3\n")
    data = raw(source="csv", path=path, label_column="label")
    assert data.x.tolist() == [[0.5, 2], [1.5, 3]] and data.y.tolist() == [1, 0]
    by_index = raw(source="csv", path=path, label_column=0)
    assert by_index.y.tolist() == [1, 0]


def test_csv_class_names_as_labels(tmp_path):
    data = raw(source="csv", path=write(tmp_path / "d.csv", "w,h,kind\n1,2,cat\n3,4,dog\n5,6,cat\n"))
    assert data.classes == ["cat", "dog"] and data.y.tolist() == [0, 1, 0] and data.named_classes


def test_csv_non_numeric_cell_names_row_and_column(tmp_path):
    path = write(tmp_path / "d.csv", "w,h,label\n1,2,0\n3,oops,1\n")
    with pytest.raises(DataError) as exc:
        raw(source="csv", path=path)
    assert "d.csv" in exc.value.one_line() and "row 3, column 1" in exc.value.one_line()
    assert "oops" not in exc.value.one_line()  # the value is never echoed (the file may be anything)


def test_csv_errors_never_echo_the_file(tmp_path):
    secret = "SECRET_KEY=hush"
    cases = [
        (f"{secret},b\nx,1\n", {"label_column": "nope"}),  # the header is not listed in the hint
        (f"1,{secret}\n2,3\n", {"label_map": {"3": 0}}),  # a label missing from label_map
        (f"1,2\n{secret},1\n", {"label_column": 1}),  # a feature that is not a number
        (f"1,{secret}\n", {"class_names": ["a"]}),  # a class missing from class_names
    ]
    for text, options in cases:
        with pytest.raises(DataError) as exc:
            raw(source="csv", path=write(tmp_path / "s.csv", text), **options)
        assert "hush" not in exc.value.one_line()
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe" + secret.encode() + b",\x80\n")
    with pytest.raises(DataError, match="not UTF-8"):
        raw(source="csv", path=str(path))


def test_csv_label_out_of_range_names_row_and_column(tmp_path):
    path = write(tmp_path / "d.csv", "1,2,0\n3,4,9\n")
    with pytest.raises(DataError) as exc:
        raw(source="csv", path=path, class_names=["a", "b"])
    assert "row 2, column 2" in exc.value.one_line() and "out of range" in exc.value.one_line()


def test_chunked_import_writes_what_the_in_memory_decode_gives(tmp_path):
    from layerlab.data.sources.imagefolder import import_imagefolder, load_imagefolder

    root = tmp_path / "many"
    for n in range(40):
        write_image(root / ("a" if n % 3 else "b") / f"img_{n}.png", n * 6)
    (root / "a" / "img_20.png").write_bytes(b"\x89PNG cut")  # a skipped file inside the second chunk
    cfg = DataConfig(source="imagefolder", path=str(root), size=[6, 5], channels=3)
    whole = load_imagefolder(cfg)
    chunked = import_imagefolder(cfg, tmp_path / "x.npy", chunk_bytes=1)  # 16 images a chunk
    assert np.array_equal(np.load(tmp_path / "x.npy"), whole.x) and whole.x.shape == (39, 3, 6, 5)
    assert np.array_equal(chunked.y, whole.y) and chunked.paths == whole.paths
    assert chunked.skipped == whole.skipped and [p for p, _ in chunked.skipped] == ["a/img_20.png"]
