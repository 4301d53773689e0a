"""The inspect engine's parts on hand-made networks: hooks, channel statistics, filters, receptive fields,
the top 9, activation maximization and traces over frames (1- and 3-channel inputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inspect_nets import conv_spec, examples, make_trained
from PIL import Image

from layerlab.core.errors import ConfigError, DataError
from layerlab.inference.inspect import activations, filters, maximize, topk, trace


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(params=[1, 3], ids=["grey", "rgb"])
def trained(request, tmp_path):
    return make_trained(tmp_path, conv_spec(channels=request.param))


def test_hooks_capture_every_spec_layer_with_its_shape(trained):
    entries = activations.layer_entries(trained)
    assert [e.name for e in entries] == ["conv1", "act1", "pool1", "conv2", "act2", "flat", "out"]
    outputs, logits = activations.capture(trained, examples(trained, 2)[0], entries)
    for entry in entries:
        assert tuple(outputs[entry.name].shape[1:]) == entry.shape
    assert logits.shape == (2, 3)
    assert torch.allclose(outputs["act1"], outputs["conv1"].clamp(min=0))


def test_layers_inside_a_residual_block_are_hooked_by_path(tmp_path):
    spec = {
        "input": [1, 8, 8],
        "classes": 2,
        "layers": [
            {"kind": "conv2d", "out": 3, "kernel": 3, "padding": 1, "name": "stem"},
            {
                "kind": "residual",
                "name": "res1",
                "layers": [
                    {"kind": "conv2d", "out": 3, "kernel": 3, "padding": 1, "name": "conv_a"},
                    {"kind": "relu", "name": "act_a"},
                ],
            },
            {"kind": "global_avgpool", "name": "gap"},
            {"kind": "linear", "out": "classes", "name": "out"},
        ],
    }
    net = make_trained(tmp_path, spec)
    entries = activations.layer_entries(net)
    assert [e.path for e in entries] == ["stem", "res1", "res1.conv_a", "res1.act_a", "gap", "out"]
    outputs, _ = activations.capture(net, torch.randn(1, 1, 8, 8), entries)
    assert outputs["conv_a"].shape == (1, 3, 8, 8) and outputs["gap"].shape == (1, 3)
    field = topk.receptive_field(net, "act_a")
    assert (field.size, field.jump) == (5, 1)


def test_unknown_layer_lists_the_layer_names_and_bad_channels_say_the_range(trained):
    with pytest.raises(ConfigError) as caught:
        activations.find_entry(trained, "conv9")
    assert "conv1, act1, pool1, conv2, act2, flat, out" in caught.value.one_line()
    entry = activations.find_entry(trained, "conv2")
    for bad in (5, -1, 2.5, True):
        with pytest.raises(ConfigError, match="channel"):
            activations.check_channel(entry, bad)
    assert activations.check_channel(entry, 4) == 4


def test_dead_channels_are_counted_on_a_network_with_a_forced_dead_channel(tmp_path):
    net = make_trained(tmp_path, conv_spec())
    conv = net.model.conv1
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(
            torch.tensor([-1.0, 0.5, 2.0, 0.0])
        )  # outputs: constant -1 (dead), 0.5, 2, 0 (never above 0)
    stats = activations.channel_stats(net, examples(net, 40)[0])
    assert stats["conv1"]["dead_channels"] == [0, 3] and stats["conv1"]["dead"] == 2
    assert stats["conv1"]["mean"] == pytest.approx([-1.0, 0.5, 2.0, 0.0])
    assert stats["act1"]["dead_channels"] == [0, 3] and stats["act1"]["n"] == 40
    with torch.no_grad():
        conv.bias.copy_(torch.tensor([1.0, 1.0, 1.0, 1.0]))
    assert activations.channel_stats(net, examples(net, 8)[0])["conv1"]["dead"] == 0


def test_activation_images_are_grids_of_every_channel_and_bars_for_dense(trained, tmp_path):
    entries = {e.name: e for e in activations.layer_entries(trained)}
    outputs, _ = activations.capture(trained, examples(trained, 1)[0])
    grid = activations.activation_image(outputs["conv1"][0].numpy(), entries["conv1"], tmp_path / "g.png")
    bars = activations.activation_image(outputs["out"][0].numpy(), entries["out"], tmp_path / "b.png")
    width, height = Image.open(tmp_path / grid).size
    # 4 channels of 8x8 scaled to 32x32 tiles, 2 x 2 with 1-pixel gaps
    assert (width, height) == (2 * 33 + 1, 2 * 33 + 1)
    assert Image.open(tmp_path / bars).size[0] == 3 * 6 + 2


def test_first_layer_filters_are_grey_for_one_channel_and_colour_for_three(trained, tmp_path):
    weights = filters.first_layer_filters(trained)
    assert weights.shape == (4, trained.input_shape[0], 3, 3)
    info = filters.filters_image(trained, tmp_path / "f.png")
    assert info == {
        "layer": "conv1",
        "image": "f.png",
        "count": 4,
        "channels": trained.input_shape[0],
        "kernel": 3,
    }
    pixels = np.asarray(Image.open(tmp_path / "f.png").convert("RGB")).astype(int)
    tile = pixels[1:33, 1:33]
    colourful = np.abs(tile[..., 0] - tile[..., 1]).max() > 0
    assert colourful == (trained.input_shape[0] == 3)


def test_receptive_field_follows_kernels_strides_and_padding(trained):
    assert topk.receptive_field(trained, "conv1") == topk.ReceptiveField(3, 1, 0)
    # conv3/p1 -> pool2/s2 -> conv3/p1: size 3 + 1 = 4, then 4 + 2 * 2 = 8; jump 2; first centre 0.5
    assert topk.receptive_field(trained, "act2") == topk.ReceptiveField(8, 2, 0.5)
    assert topk.receptive_field(trained, "flat") is None and topk.receptive_field(trained, "out") is None
    field = topk.receptive_field(trained, "conv2")
    assert field.box(0, 0, 8, 8) == (0, 0, 5, 5)  # centre 0.5, half 3.5: rows -3..4 clipped to the image
    assert field.box(3, 3, 8, 8) == (3, 3, 8, 8)


def test_top9_are_the_largest_peaks_with_crops_inside_the_image(trained, tmp_path):
    x, y = examples(trained, 40)
    entry = activations.find_entry(trained, "conv2")
    result = topk.top_examples(trained, x, y, entry, 2)
    assert len(result["examples"]) == 9
    outputs, _ = activations.capture(trained, x)
    peaks = outputs["conv2"][:, 2].reshape(40, -1).max(dim=1).values
    assert [e["index"] for e in result["examples"]] == peaks.argsort(descending=True)[:9].tolist()
    field = topk.receptive_field(trained, "conv2")
    for item in result["examples"]:
        top, left, bottom, right = item["box"]
        assert 0 <= top < bottom <= 8 and 0 <= left < right <= 8
        assert bottom - top <= field.size and right - left <= field.size
        row, col = item["position"]
        centre = field.start + row * field.jump, field.start + col * field.jump
        assert top <= centre[0] < bottom and left <= centre[1] < right
        assert item["label"] == str(int(y[item["index"]]))
    drawn = topk.topk_images(trained, x, result, tmp_path)
    assert (tmp_path / drawn["image"]).is_file() and (tmp_path / drawn["crops"]).is_file()
    dense = topk.top_examples(trained, x, y, activations.find_entry(trained, "out"), 1, k=3)
    assert [e["box"] for e in dense["examples"]] == [None, None, None]


def test_activation_maximization_raises_the_target_for_a_channel_and_a_class(trained, tmp_path):
    entry = activations.find_entry(trained, "conv2")
    reg = maximize.Regularizers(steps=40)
    found = maximize.maximize(trained, entry=entry, unit=1, regularizers=reg, seed=3)
    assert found.image.shape == tuple(trained.input_shape) and len(found.history) == 40
    # better than the start and than the best of 300 random images of the valid pixel range
    generator = torch.Generator().manual_seed(0)
    randoms = (torch.rand((300, *trained.input_shape), generator=generator) - 0.5) / 0.25
    outputs, logits = activations.capture(trained, randoms)
    assert found.final > found.start and found.final > float(outputs["conv2"][:, 1].mean(dim=(1, 2)).max())
    again = maximize.maximize(trained, entry=entry, unit=1, regularizers=reg, seed=3)
    np.testing.assert_array_equal(found.image, again.image)  # seeded
    low, high = (0 - 0.5) / 0.25, (1 - 0.5) / 0.25
    assert found.image.min() >= low - 1e-6 and found.image.max() <= high + 1e-6  # a real image's range
    logit = maximize.maximize(trained, entry=None, unit=2, regularizers=reg, seed=0)
    assert logit.final > logit.start and logit.final > float(logits[:, 2].max())
    name = maximize.maximize_image(trained, logit, tmp_path / "m.png")
    assert Image.open(tmp_path / name).size == (128, 128)


def test_regularizers_are_applied_and_bounded():
    x = torch.zeros(1, 3, 9, 9)
    x[0, :, 4, 4] = 1.0
    blurred = maximize.gaussian_blur(x, 1.0)
    assert (
        blurred[0, 0, 4, 4] < 1.0
        and blurred[0, 0, 4, 5] > 0
        and float(blurred.sum()) == pytest.approx(float(x.sum()), rel=1e-4)
    )
    score = torch.arange(81.0).view(1, 9, 9)
    kept = maximize._zero_below(torch.ones(1, 3, 9, 9), score, 50.0)
    assert float(kept[0, 0].sum()) == pytest.approx(41)  # the upper half (and the median) survive
    for bad in (dict(steps=0), dict(steps=10**6), dict(lr=float("nan")), dict(decay=1.0), dict(blur_every=0)):
        with pytest.raises(ConfigError):
            maximize.Regularizers(**bad).check()


def test_trace_marks_one_peak_per_pass_over_the_frames(tmp_path):
    net = make_trained(tmp_path, conv_spec())
    with torch.no_grad():
        net.model.conv1.weight.zero_()
        net.model.conv1.weight[0, 0, 1, 1] = 1.0  # channel 0 copies the input
        net.model.conv1.bias.zero_()
    steps = np.arange(30)
    brightness = -np.cos(2 * np.pi * 3 * steps / 30)  # three passes, from dark
    frames = (
        torch.as_tensor(brightness, dtype=torch.float32).view(30, 1, 1, 1).expand(30, 1, 8, 8).contiguous()
    )
    entry = activations.find_entry(net, "conv1")
    values = trace.channel_trace(net, frames, entry, 0)
    assert values.shape == (30,) and values[np.argmax(brightness)] == pytest.approx(
        brightness.max(), abs=0.01
    )
    result = trace.trace_part(net, frames, entry, 0, tmp_path)
    assert result["count"] == 3 and (tmp_path / result["image"]).is_file()
    with pytest.raises(DataError, match="do not fit"):
        trace.channel_trace(net, torch.zeros(5, 3, 8, 8), entry, 0)
