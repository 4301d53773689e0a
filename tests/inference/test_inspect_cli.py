"""``layerlab inspect RUN --input FILE``: pictures and a JSON index; bad input is one line and a non-zero exit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from layerlab.cli.main import main
from layerlab.core import runlayout
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("run")
    layers = [
        {"kind": "conv2d", "out": 4, "kernel": 3, "padding": 1, "name": "conv1"},
        {"kind": "relu", "name": "act1"},
        {"kind": "maxpool2d", "kernel": 2, "name": "pool1"},
        {"kind": "flatten", "name": "flat"},
        {"kind": "linear", "out": "classes", "name": "out"},
    ]
    cfg = experiment_from_mapping(
        {"data": {"source": "digits", "limit": 300}, "model": {"layers": layers}, "train": {"epochs": 1}}
    )
    train_experiment(cfg, run_dir, device="cpu")
    return run_dir


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "digit.png"
    Image.fromarray((np.random.default_rng(0).random((16, 16)) * 255).astype(np.uint8)).save(path)
    return path


def test_inspect_writes_the_pictures_and_prints_the_json_index(digits_run, image, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["inspect", str(digits_run), "--input", str(image), "--out", str(out), "--steps", "5", "--json"]
    )
    assert code == 0
    index = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert index["input"]["name"] == "digit.png" and index["layer"] == "conv1"
    assert index["stats"]["split"] == "test" and index["layers"][0]["stats"]["n"] > 0
    assert [m["method"] for m in index["attributions"]["methods"]], index["attributions"]
    files = {p.name for p in out.iterdir()}
    assert {"index.json", "input.png", "filters.png", "topk.png", "act_conv1.png", "act_out.png"} <= files
    assert (digits_run / runlayout.INSPECT_DIR / index["key"] / "index.json").is_file()
    # the same again is read back from the run's cache
    assert main(["inspect", str(digits_run), "--input", str(image), "--steps", "5"]) == 0
    assert "cached" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message", "code"),
    [
        (
            ["--layer", "conv7"],
            "unknown layer 'conv7'; did you mean 'conv1'? layers: conv1, act1, pool1, flat, out",
            2,
        ),
        (["--layer", "pool1", "--channel", "4"], "channel 4 is out of range for layer pool1 (4 channels)", 2),
        (["--channel", "-1"], "give a channel from 0 to 3", 2),
        (["--steps", "0"], "steps must be a whole number from 1 to 2000", 2),
    ],
)
def test_bad_options_are_one_line(digits_run, image, capsys, extra, message, code):
    assert main(["inspect", str(digits_run), "--input", str(image), "--parts", "activations", *extra]) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_wrong_inputs_and_runs_without_checkpoints_are_one_line(digits_run, tmp_path, capsys):
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 8, 8), np.float32))
    assert main(["inspect", str(digits_run), "--input", str(wrong)]) == 3
    assert "holds an array of shape [3, 8, 8]; this model takes [1, 8, 8]" in capsys.readouterr().err
    assert main(["inspect", str(digits_run), "--input", str(tmp_path / "none.png")]) == 3
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty_run"
    empty.mkdir()
    assert main(["inspect", str(empty), "--input", str(wrong)]) == 4
    assert "holds no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value"), [("--seed", "-1"), ("--threads", "0"), ("--threads", "100000")])
def test_seed_and_threads_are_checked(digits_run, image, capsys, flag, value):
    assert main(["inspect", str(digits_run), "--input", str(image), flag, value]) == 2
    assert f"{flag}: {flag[2:]} must be a whole number" in capsys.readouterr().err


def test_a_three_channel_run_is_inspected_in_colour(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for label, colour in (("red", 0), ("blue", 2)):
        folder = tmp_path / "photos" / label
        folder.mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 60, (12, 12, 3), dtype=np.uint8)
            pixels[..., colour] += 180
            Image.fromarray(pixels).save(folder / f"{i}.png")
    layers = [
        {"kind": "conv2d", "out": 3, "kernel": 3, "padding": 1, "name": "conv1"},
        {"kind": "relu", "name": "act1"},
        {"kind": "global_avgpool", "name": "gap"},
        {"kind": "linear", "out": "classes", "name": "out"},
    ]
    data = {"source": "imagefolder", "path": str(tmp_path / "photos"), "size": [12, 12], "channels": 3}
    cfg = experiment_from_mapping({"data": data, "model": {"layers": layers}, "train": {"epochs": 1}})
    train_experiment(cfg, tmp_path / "run", device="cpu", cache_dir=tmp_path / "cache")
    photo = tmp_path / "photos" / "red" / "0.png"
    parts = ["--parts", "activations", "filters", "maximize", "--steps", "5", "--json"]
    assert main(["inspect", str(tmp_path / "run"), "--input", str(photo), *parts]) == 0
    index = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    folder = tmp_path / "run" / runlayout.INSPECT_DIR / index["key"]
    assert index["input"]["shape"] == [3, 12, 12] and index["filters"]["channels"] == 3
    shown = np.asarray(Image.open(folder / index["input"]["image"]).convert("RGB")).astype(int)
    assert shown[..., 0].mean() > shown[..., 2].mean() + 50  # the red photo de-normalized is red
    assert set(index["maximize"]) == {"channel", "class"}
