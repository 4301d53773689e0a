"""``inspect_run``: every part into one cached entry per checkpoint, input and options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from inspect_nets import conv_spec, examples, make_trained

from layerlab.core.errors import ConfigError, DataError
from layerlab.inference.inspect import activations, report

FAST = ("activations", "stats", "filters", "topk", "maximize")


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def small(regularizers_steps: int = 10):
    from layerlab.inference.inspect.maximize import Regularizers

    return Regularizers(steps=regularizers_steps)


@pytest.mark.parametrize("channels", [1, 3])
def test_an_entry_holds_every_picture_its_index_names(tmp_path, channels):
    net = make_trained(tmp_path, conv_spec(channels=channels))
    x, y = examples(net, 24)
    index = report.inspect_run(
        net,
        x[0],
        parts=FAST,
        cache_dir=tmp_path / "cache",
        data=(x, y),
        regularizers=small(),
        input_name="a.png",
    )
    folder = Path(index["dir"])
    assert index["cached"] is False and folder.parent == tmp_path / "cache" and folder.name == index["key"]
    assert index["input"]["name"] == "a.png" and index["input"]["shape"] == [channels, 8, 8]
    assert (
        index["layer"] == "conv2" and 0 <= index["channel"] < 5
    )  # default: the last conv, most active channel
    names = [item["image"] for item in index["layers"]] + [index["input"]["image"], index["filters"]["image"]]
    names += [index["topk"]["image"], index["topk"]["crops"]] + [
        m["image"] for m in index["maximize"].values()
    ]
    for name in names:
        assert name and (folder / name).is_file(), name
    conv1 = index["layers"][0]
    assert conv1["stats"]["n"] == 24 and len(conv1["stats"]["mean"]) == 4 and conv1["kind"] == "conv2d"
    assert index["stats"] == {"split": "given", "n": 24, "dead_by_layer": index["stats"]["dead_by_layer"]}
    assert set(index["maximize"]) == {"channel", "class"} and index["input"]["prediction"]["top"]
    assert json.loads((folder / report.INDEX).read_text())["key"] == index["key"]


def test_a_second_call_returns_the_cached_index_without_a_forward(tmp_path, monkeypatch):
    net = make_trained(tmp_path, conv_spec())
    x, y = examples(net, 16)
    call = dict(parts=FAST, cache_dir=tmp_path / "cache", data=(x, y), regularizers=small(), layer="conv1")
    first = report.inspect_run(net, x[0], **call)
    written = (Path(first["dir"]) / report.INDEX).stat().st_mtime_ns
    forwards = []
    monkeypatch.setattr(
        net.model, "forward", lambda *a: forwards.append(1) or (_ for _ in ()).throw(AssertionError)
    )
    second = report.inspect_run(net, x[0], **call)
    assert second["cached"] is True and forwards == []
    assert (Path(second["dir"]) / report.INDEX).stat().st_mtime_ns == written
    assert {k: v for k, v in second.items() if k != "cached"} == {
        k: v for k, v in first.items() if k != "cached"
    }
    with pytest.raises(AssertionError):  # another channel is another entry: it computes
        report.inspect_run(net, x[0], **{**call, "channel": 1})


def test_the_key_follows_the_checkpoint_content_the_input_and_the_options(tmp_path):
    net = make_trained(tmp_path, conv_spec())
    x, y = examples(net, 8)
    call = dict(parts=("activations",), cache_dir=tmp_path / "cache")
    key = report.inspect_run(net, x[0], **call)["key"]
    assert report.inspect_run(net, x[1], **call)["key"] != key
    assert report.inspect_run(net, x[0], **{**call, "layer": "conv1"})["key"] != key
    torch.save({"other": torch.ones(3)}, net.checkpoint)  # same path, new content
    assert report.inspect_run(net, x[0], **call)["key"] != key
    assert len([p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]) == 4


def test_out_dir_gets_a_copy_and_frames_add_the_trace(tmp_path):
    net = make_trained(tmp_path, conv_spec())
    frames = torch.randn(10, 1, 8, 8)
    index = report.inspect_run(
        net,
        frames,
        parts=("activations",),
        layer="conv1",
        channel=2,
        cache_dir=tmp_path / "c",
        out_dir=tmp_path / "o",
    )
    assert index["trace"]["layer"] == "conv1" and len(index["trace"]["values"]) == 10
    assert (tmp_path / "o" / "trace.png").is_file() and (tmp_path / "o" / report.INDEX).is_file()


def test_bad_inputs_and_options_are_one_line_errors(tmp_path):
    net = make_trained(tmp_path, conv_spec())
    cache = tmp_path / "cache"
    with pytest.raises(
        DataError, match=r"shape \[3, 8, 8\] does not fit this model, which takes \[1, 8, 8\]"
    ):
        report.inspect_run(net, torch.zeros(3, 8, 8), cache_dir=cache)
    with pytest.raises(DataError, match="NaN"):
        report.inspect_run(net, torch.full((1, 8, 8), float("nan")), cache_dir=cache)
    with pytest.raises(ConfigError, match="layers: conv1, act1"):
        report.inspect_run(net, torch.zeros(1, 8, 8), layer="nope", cache_dir=cache)
    with pytest.raises(ConfigError, match="from 0 to 3"):
        report.inspect_run(net, torch.zeros(1, 8, 8), layer="conv1", channel=4, cache_dir=cache)
    with pytest.raises(ConfigError, match="unknown inspect part"):
        report.inspect_run(net, torch.zeros(1, 8, 8), parts=("everything",), cache_dir=cache)
    assert not cache.exists() or not any(cache.iterdir())  # nothing half-written


def test_failing_attributions_leave_the_rest_of_the_tab(tmp_path, monkeypatch):
    from layerlab.inference.inspect import attributions

    def broken(*args, **kwargs):
        raise RuntimeError("captum exploded\nsecond line")

    monkeypatch.setattr(attributions, "attribute_all", broken)
    net = make_trained(tmp_path, conv_spec())
    index = report.inspect_run(
        net, torch.zeros(1, 8, 8), parts=("activations", "attributions"), cache_dir=tmp_path
    )
    assert index["attributions"] == {"error": "attributions failed: captum exploded"}
    assert index["layers"][0]["image"]


def test_load_input_reads_images_and_arrays_like_the_run(tmp_path):
    import numpy as np
    from PIL import Image

    net = make_trained(tmp_path, conv_spec())
    Image.fromarray(np.full((20, 30), 255, np.uint8)).save(tmp_path / "white.png")
    x, name = report.load_input(net, [tmp_path / "white.png"])
    assert (
        name == "white.png" and x.shape == (1, 8, 8) and float(x.min()) == pytest.approx(2.0)
    )  # (1 - .5) / .25
    frames, _ = report.load_input(net, [tmp_path / "white.png"] * 3)
    assert frames.shape == (3, 1, 8, 8)
    np.save(tmp_path / "one.npy", np.zeros((1, 8, 8), np.float32))
    assert report.load_input(net, [tmp_path / "one.npy"])[0].shape == (1, 8, 8)
    np.save(tmp_path / "bad.npy", np.zeros((2, 2), np.float32))
    with pytest.raises(DataError, match=r"shape \[2, 2\]; this model takes \[1, 8, 8\]"):
        report.load_input(net, [tmp_path / "bad.npy"])
    with pytest.raises(DataError, match="does not exist"):
        report.load_input(net, [tmp_path / "missing.png"])
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="one image, several images"):
        report.load_input(net, [tmp_path / "notes.txt"])


def test_default_layer_without_convolutions_is_the_last_hidden_layer(tmp_path):
    spec = {
        "input": [4],
        "classes": 2,
        "layers": [
            {"kind": "linear", "out": 6, "name": "hidden"},
            {"kind": "relu", "name": "act"},
            {"kind": "linear", "out": "classes", "name": "out"},
        ],
    }
    net = make_trained(tmp_path, {**spec})
    net.preprocessing = {"kind": "vector", "normalize": "standard", "mean": [0.0] * 4, "std": [1.0] * 4}
    entries = activations.layer_entries(net)
    assert report.default_entry(entries).name == "act"
    index = report.inspect_run(
        net,
        torch.randn(4),
        parts=("activations", "stats", "maximize"),
        cache_dir=tmp_path / "c",
        data=torch.randn(10, 4),
    )
    assert index["layers"][0]["image"] and index["maximize"] is None and index["input"]["image"] is None


def test_threads_are_set_for_the_work_and_restored(tmp_path, monkeypatch):
    net = make_trained(tmp_path, conv_spec())
    seen = []
    real = activations.capture
    monkeypatch.setattr(activations, "capture", lambda *a: seen.append(torch.get_num_threads()) or real(*a))
    torch.set_num_threads(2)
    report.inspect_run(net, torch.zeros(1, 8, 8), parts=("activations",), cache_dir=tmp_path, threads=1)
    assert seen == [1] and torch.get_num_threads() == 2
    with pytest.raises(ConfigError, match="threads"):
        report.inspect_run(net, torch.ones(1, 8, 8), parts=("activations",), cache_dir=tmp_path, threads=0)


def test_a_regression_network_gets_no_class_prediction_or_class_maximization(tmp_path):
    net = make_trained(tmp_path, conv_spec(classes=2))
    net.config = {"train": {"task": "regression"}}
    x = torch.randn(6, 1, 8, 8)
    y = torch.randn(6, 2)  # float targets: no labels to show
    index = report.inspect_run(
        net,
        x[0],
        parts=("activations", "topk", "maximize"),
        cache_dir=tmp_path,
        data=(x, y),
        regularizers=small(3),
    )
    assert index["input"]["prediction"] is None and set(index["maximize"]) == {"channel"}
    assert {e["label"] for e in index["topk"]["examples"]} == {None}


def test_the_top9_shares_the_statistics_pass_over_the_split(tmp_path, monkeypatch):
    from layerlab.inference.inspect import topk

    net = make_trained(tmp_path, conv_spec())
    x, y = examples(net, 20)
    alone = topk.top_examples(net, x, y, activations.find_entry(net, "conv2"), 1)
    monkeypatch.setattr(topk, "channel_peaks", lambda *a: pytest.fail("a second pass over the split"))
    index = report.inspect_run(
        net, x[0], parts=("stats", "topk"), layer="conv2", channel=1, cache_dir=tmp_path, data=(x, y)
    )
    assert [e["index"] for e in index["topk"]["examples"]] == [e["index"] for e in alone["examples"]]


def test_a_network_on_frames_gets_per_frame_layers_and_a_trace(tmp_path):
    spec = {
        "input": [6, 1, 8, 8],
        "classes": 3,
        "layers": [
            {
                "kind": "timedistributed",
                "name": "frames",
                "layers": [
                    {"kind": "conv2d", "out": 4, "kernel": 3, "padding": 1, "name": "conv1"},
                    {"kind": "relu", "name": "act1"},
                    {"kind": "flatten", "name": "flat"},
                ],
            },
            {"kind": "lstm", "hidden": 5, "name": "rnn"},
            {"kind": "linear", "out": "classes", "name": "out"},
        ],
    }
    net = make_trained(tmp_path, spec)
    net.preprocessing = {
        "kind": "video",
        "size": [8, 8],
        "channels": 1,
        "steps": 6,
        "normalize": "standard",
        "mean": [0.5],
        "std": [0.25],
        "classes": ["1", "2", "3"],
    }
    import numpy as np

    np.save(tmp_path / "clip.npy", np.full((6, 1, 8, 8), 0.75, np.float32))
    clip, name = report.load_input(net, [tmp_path / "clip.npy"])
    assert name == "clip.npy" and clip.shape == (6, 1, 8, 8) and float(clip.max()) == pytest.approx(1.0)
    with pytest.raises(DataError, match="one clip"):
        report.load_input(net, [tmp_path / "clip.npy"] * 2)
    clips = torch.randn(5, 6, 1, 8, 8)
    index = report.inspect_run(
        net,
        clips[0],
        layer="conv1",
        channel=1,
        parts=("activations", "stats", "filters", "topk"),
        cache_dir=tmp_path / "c",
        data=(clips, torch.zeros(5, dtype=torch.long)),
    )
    paths = [item["path"] for item in index["layers"]]
    assert paths == ["frames", "frames.conv1", "frames.act1", "frames.flat", "rnn", "out"]
    assert all(item["image"] for item in index["layers"]) and index["filters"]["layer"] == "conv1"
    assert index["input"]["image"]  # the clip's first frame
    assert index["layers"][1]["stats"]["n"] == 5 and index["topk"] is None  # no crops of a clip
    assert len(index["trace"]["values"]) == 6 and index["trace"]["count"] == len(index["trace"]["peaks"])


def test_compute_false_only_reads_the_cache(tmp_path):
    net = make_trained(tmp_path, conv_spec())
    call = dict(parts=("activations",), cache_dir=tmp_path / "c")
    assert report.inspect_run(net, torch.zeros(1, 8, 8), compute=False, **call) is None
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
    made = report.inspect_run(net, torch.zeros(1, 8, 8), **call)
    assert report.inspect_run(net, torch.zeros(1, 8, 8), compute=False, **call)["key"] == made["key"]


def test_the_cache_keeps_the_most_recently_used_entries(tmp_path, monkeypatch):
    import os
    import time

    monkeypatch.setattr(report, "MAX_ENTRIES", 2)
    net = make_trained(tmp_path, conv_spec())
    cache = tmp_path / "c"
    keys = []
    for i in range(3):
        keys.append(
            report.inspect_run(net, torch.full((1, 8, 8), float(i)), parts=("activations",), cache_dir=cache)[
                "key"
            ]
        )
        os.utime(cache / keys[-1], (time.time() - 100 + i, time.time() - 100 + i))
        if i == 1:  # the first one is used again: the second becomes the oldest
            report.inspect_run(net, torch.full((1, 8, 8), 0.0), parts=("activations",), cache_dir=cache)
    remaining = sorted(p.name for p in cache.iterdir())
    assert remaining == sorted([keys[0], keys[2]])
