"""Video sources: the repetition-counting generator, the framefolder importer, and clips through the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_helpers import write_image

from layerlab.core.configtree import from_mapping
from layerlab.core.errors import ConfigError, DataError
from layerlab.data.config import DataConfig
from layerlab.data.prepare import held_out_examples, input_signature, load_evaluation_data, prepare_data
from layerlab.data.sources import load_raw
from layerlab.data.sources.video import _clip_parameters, offsets
from layerlab.data.videoconfig import VideoConfig

SMALL = {"frames": 12, "size": 12, "max_count": 3, "clips_per_class": 10}


def data_config(**mapping) -> DataConfig:
    cfg = from_mapping(DataConfig, mapping, "data")
    cfg.validate("data")
    return cfg


def generated(seed=0, **video):
    return load_raw(data_config(source="repetition-counting", video={**SMALL, **video}), seed=seed)


def test_generator_shapes_classes_and_balance():
    raw = generated()
    assert raw.kind == "video" and raw.x.dtype == np.uint8 and raw.x.shape == (30, 12, 1, 12, 12)
    assert raw.classes == ["1", "2", "3"]
    assert np.bincount(raw.y).tolist() == [10, 10, 10]
    assert raw.x.min() < 60 and raw.x.max() > 150  # a bright shape on a dark background


def test_generator_is_seeded():
    assert np.array_equal(generated(seed=4).x, generated(seed=4).x)
    assert not np.array_equal(generated(seed=4).x, generated(seed=5).x)


def test_the_shape_turns_around_2k_or_2k_minus_1_times():
    video = VideoConfig(**SMALL)
    rng = np.random.default_rng(0)
    counts = np.repeat(np.arange(1, 4), 50)
    params = _clip_parameters(rng, len(counts), video)
    path = offsets(counts, params, 400)  # a fine time grid of the same motion
    turns = (np.diff(np.sign(np.diff(path, axis=1)), axis=1) != 0).sum(axis=1)
    assert np.all((turns == 2 * counts) | (turns == 2 * counts - 1))


def test_rendered_frames_follow_the_offsets():
    cfg = data_config(
        source="repetition-counting", video={**SMALL, "size": 32, "noise": 0.0, "shape": "disc"}
    )
    raw = load_raw(cfg, seed=1)
    frames = raw.x[:, :, 0].astype(np.float64)
    bright = frames > frames.reshape(len(frames), -1).mean(axis=1)[:, None, None, None]
    rows = np.arange(32)[None, None, :, None]
    cols = np.arange(32)[None, None, None, :]
    cy = (bright * rows).sum(axis=(2, 3)) / bright.sum(axis=(2, 3))
    cx = (bright * cols).sum(axis=(2, 3)) / bright.sum(axis=(2, 3))
    distance = np.hypot(cy - 15.5, cx - 15.5)
    moving = distance.max(axis=1) - distance.min(axis=1)
    assert np.all(moving > 2)  # every clip's shape moves


@pytest.mark.parametrize(
    ("video", "pattern"),
    [
        ({"frames": 8, "max_count": 3}, "8 frames cannot show 3 back-and-forth"),
        ({"size": 4}, "size must be in"),
        ({"noise": -0.1}, "noise must be in"),
        ({"noise": float("nan")}, "noise"),
        ({"clips_per_class": 0}, "clips_per_class must be in"),
        ({"max_count": 1}, "max_count must be in"),
        ({"frames": 512, "size": 256, "clips_per_class": 100_000}, "above the 2 GiB limit"),
        ({"shape": "triangle"}, "shape"),
        ({"frame": 8}, "frames"),  # an unknown key suggests the closest
    ],
)
def test_bad_video_options_are_one_line_errors(video, pattern):
    with pytest.raises(ConfigError, match=pattern):
        data_config(source="repetition-counting", video=video)


def test_options_that_do_not_apply_are_refused():
    with pytest.raises(ConfigError, match="data.video applies to the video sources"):
        data_config(source="digits", video={"frames": 8})
    with pytest.raises(ConfigError, match="data.augment does not apply to video clips"):
        data_config(source="repetition-counting", augment={"hflip": True})
    with pytest.raises(ConfigError, match="data.size applies to image files"):
        data_config(source="repetition-counting", size=[8, 8])
    with pytest.raises(ConfigError, match="'framefolder' needs a path"):
        data_config(source="framefolder")


def test_prepared_clips_are_normalized_on_train_and_split_by_class(cache_dir):
    cfg = data_config(source="repetition-counting", video=SMALL, split={"val": 0.2, "test": 0.2})
    data = prepare_data(cfg, seed=0, cache_dir=cache_dir)
    assert data.input_shape == (12, 1, 12, 12) and input_signature(cfg) == ((12, 1, 12, 12), 3)
    assert tuple(data.train_x.shape[1:]) == (12, 1, 12, 12) and data.train_x.dtype == torch.float32
    assert abs(float(data.train_x.mean())) < 1e-4 and abs(float(data.train_x.std()) - 1) < 1e-3
    assert len(data.train_y) + len(data.val_y) + len(data.test_y) == 30
    assert sorted(np.bincount(data.test_y.numpy()).tolist()) == [2, 2, 2]
    pre = data.preprocessing
    assert pre.kind == "video" and pre.steps == 12 and pre.size == [12, 12] and pre.channels == 1
    again = type(pre).from_dict(pre.to_dict())
    raw = load_raw(cfg, seed=0)
    assert torch.allclose(again.apply(raw.x[:2]), pre.apply(raw.x[:2]))
    held = held_out_examples(cfg, seed=0, positions=[0, 1])
    assert held.x.shape == (2, 12, 1, 12, 12) and held.kind == "video"
    assert torch.allclose(pre.apply(held.x), data.test_x[:2])


# --- framefolder -------------------------------------------------------------------------------


def write_clips(root: Path, clips: dict[str, int], frames: int = 4) -> Path:
    """``clips``: class -> number of clips; frame n of a clip has gray value 10 * n + clip offset."""
    for label, count in clips.items():
        for c in range(count):
            for n in range(frames):
                write_image(
                    root / label / f"clip{c}" / f"frame_{n}.png",
                    10 * n + (100 if label == "b" else 0),
                    (8, 6),
                )
    return root


def test_framefolder_imports_clips_with_frames_in_natural_order(tmp_path, cache_dir):
    root = tmp_path / "clips"
    for n in (0, 1, 2, 10):  # frame_10 after frame_2
        write_image(root / "a" / "clip0" / f"frame_{n}.png", 5 * n, (8, 6))
        write_image(root / "b" / "clip0" / f"frame_{n}.png", 100 + 5 * n, (8, 6))
    cfg = data_config(source="framefolder", path=str(root), size=[6, 8])
    raw = load_raw(cfg, seed=0)
    assert raw.kind == "video" and raw.x.shape == (2, 4, 1, 6, 8) and raw.classes == ["a", "b"]
    assert raw.x[0, :, 0, 0, 0].tolist() == [0, 5, 10, 50]
    assert raw.paths == ["a/clip0", "b/clip0"] and raw.y.tolist() == [0, 1]
    assert input_signature(cfg) == ((4, 1, 6, 8), 2)


def test_framefolder_caches_and_notices_changed_frames(tmp_path, cache_dir):
    root = write_clips(tmp_path / "clips", {"a": 3, "b": 3})
    cfg = data_config(source="framefolder", path=str(root), size=[6, 8], split={"val": 0.0, "test": 0.34})
    first = prepare_data(cfg, seed=0, cache_dir=cache_dir)
    second = prepare_data(cfg, seed=0, cache_dir=cache_dir)
    assert (first.report.cache, second.report.cache) == ("miss", "hit")
    assert torch.equal(first.train_x, second.train_x)
    write_image(root / "a" / "clip0" / "frame_0.png", 250, (8, 6))
    assert prepare_data(cfg, seed=0, cache_dir=cache_dir).report.cache == "miss"


def test_framefolder_needs_the_same_frame_count_in_every_clip(tmp_path):
    root = write_clips(tmp_path / "clips", {"a": 2, "b": 2})
    (root / "b" / "clip1" / "frame_3.png").unlink()
    with pytest.raises(DataError, match="clip 'b/clip1' has 3 frames but 'a/clip0' has 4; every clip needs"):
        load_raw(data_config(source="framefolder", path=str(root)), seed=0)
    with pytest.raises(DataError, match="clip 'a/clip0' has 4 frames but data.video.frames is 6"):
        load_raw(data_config(source="framefolder", path=str(root), video={"frames": 6}), seed=0)


def test_framefolder_layout_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_raw(data_config(source="framefolder", path=str(tmp_path / "nowhere")), seed=0)
    root = write_clips(tmp_path / "clips", {"a": 1, "b": 1})
    write_image(root / "a" / "loose.png", 3)
    with pytest.raises(DataError, match="class folder 'a' holds files .* directly"):
        load_raw(data_config(source="framefolder", path=str(root)), seed=0)
    (root / "a" / "loose.png").unlink()
    (root / "b" / "empty").mkdir()
    with pytest.raises(DataError, match="clip folder 'b/empty' holds no frames"):
        load_raw(data_config(source="framefolder", path=str(root)), seed=0)


def test_a_clip_with_a_broken_frame_is_skipped_with_the_reason(tmp_path):
    root = write_clips(tmp_path / "clips", {"a": 2, "b": 2})
    (root / "a" / "clip1" / "frame_2.png").write_bytes(b"not an image")
    raw = load_raw(data_config(source="framefolder", path=str(root)), seed=0)
    assert len(raw.y) == 3 and raw.skipped[0][0] == "a/clip1" and "frame_2.png" in raw.skipped[0][1]


def test_evaluation_data_from_frame_folders_uses_the_runs_size(tmp_path, cache_dir):
    root = write_clips(tmp_path / "clips", {"a": 2, "b": 2})
    cfg = data_config(source="framefolder", path=str(root), size=[6, 8], split={"val": 0.0, "test": 0.5})
    pre = prepare_data(cfg, seed=0, cache_dir=cache_dir).preprocessing
    x, y, classes = load_evaluation_data(f"framefolder:{root}", pre, cache_dir=cache_dir)
    assert tuple(x.shape) == (4, 4, 1, 6, 8) and classes == ["a", "b"] and sorted(y.tolist()) == [0, 0, 1, 1]
