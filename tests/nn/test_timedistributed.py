"""timedistributed: a conv sub-list applied to every frame of (T, C, H, W), read by lstm / gru."""

from __future__ import annotations

import pytest
import torch

from layerlab.core.errors import ShapeError, SpecError
from layerlab.nn.build import build_network
from layerlab.nn.shapes import summarize
from layerlab.nn.spec import parse_network

torch.set_num_threads(1)

FRAMES = [5, 1, 8, 8]  # T, C, H, W
PER_FRAME = [
    {"kind": "conv2d", "name": "conv1", "out": 4, "kernel": 3, "padding": 1},
    {"kind": "relu"},
    {"kind": "maxpool2d", "kernel": 2},
    {"kind": "flatten"},
]


def cnn_lstm(recurrent="lstm", **options):
    return [
        {"kind": "timedistributed", "name": "frames", "layers": PER_FRAME},
        {"kind": recurrent, "name": "rnn", "hidden": 6, **options},
        {"kind": "linear", "out": 3},
    ]


def test_shapes_params_and_macs_of_a_cnn_lstm():
    summary = summarize(parse_network({"input": FRAMES, "layers": cnn_lstm()}))
    rows = {row.name: row for row in summary.rows}
    assert rows["frames"].output_shape == (5, 4 * 4 * 4)
    assert rows["conv1"].input_shape == (1, 8, 8) and rows["conv1"].depth == 1  # the summary shows sub-layers
    conv_params = 4 * 1 * 9 + 4
    assert rows["frames"].params == conv_params  # weights shared across frames count once
    assert rows["frames"].macs == 5 * rows["conv1"].macs  # ... and run once per frame
    assert rows["rnn"].input_shape == (5, 64) and rows["rnn"].output_shape == (6,)
    assert summary.output_shape == (3,)


@pytest.mark.parametrize("recurrent", ["lstm", "gru"])
def test_built_network_matches_the_arithmetic(recurrent):
    spec = parse_network({"input": FRAMES, "layers": cnn_lstm(recurrent)})
    summary = summarize(spec)
    model = build_network(spec)
    out = model(torch.randn(2, *FRAMES))
    assert tuple(out.shape) == (2, 3)
    assert sum(p.numel() for p in model.parameters()) == summary.total_params
    assert "frames.conv1.weight" in model.state_dict()


def test_each_frame_goes_through_the_same_body():
    spec = parse_network({"input": FRAMES, "layers": [{"kind": "timedistributed", "layers": PER_FRAME}]})
    model = build_network(spec).eval()
    x = torch.randn(3, *FRAMES)
    out = model(x)
    body = model.timedistributed_1
    for t in range(FRAMES[0]):
        frame = x[:, t]
        for name in body._order:
            frame = getattr(body, name)(frame)
        assert torch.allclose(out[:, t], frame, atol=1e-6)


def test_body_without_flatten_keeps_maps_and_lstm_says_how_to_fix():
    layers = [{"kind": "timedistributed", "layers": PER_FRAME[:3]}]
    summary = summarize(parse_network({"input": FRAMES, "layers": layers}))
    assert summary.output_shape == (5, 4, 4, 4)
    with pytest.raises(
        ShapeError, match=r"lstm needs a sequence \(T, F\).*layers end with \{kind: flatten\}"
    ):
        parse_network({"input": FRAMES, "layers": [*layers, {"kind": "lstm", "hidden": 2}]})


def test_errors_inside_the_body_name_the_nested_layer():
    layers = [
        {"kind": "timedistributed", "layers": [{"kind": "conv2d", "name": "big", "out": 2, "kernel": 9}]}
    ]
    with pytest.raises(ShapeError, match=r"conv2d #0\.0 \(big\): input 1x8x8, kernel 9"):
        parse_network({"input": FRAMES, "layers": layers})


def test_needs_a_time_axis():
    with pytest.raises(ShapeError, match=r"timedistributed needs a sequence \(T, \.\.\.\)"):
        parse_network({"input": [8], "layers": [{"kind": "timedistributed", "layers": [{"kind": "relu"}]}]})


def test_conv_directly_on_frames_says_what_to_do():
    with pytest.raises(ShapeError, match="conv2d needs an image"):
        parse_network({"input": FRAMES, "layers": [{"kind": "conv2d", "out": 2}]})


@pytest.mark.parametrize(
    ("entry", "pattern"),
    [
        ({"kind": "timedistributed", "layers": []}, "layers"),
        ({"kind": "timedistributed"}, "layers"),
        ({"kind": "timedistributed", "layers": [{"kind": "conv3d"}]}, "unknown layer kind 'conv3d'"),
        ({"kind": "timedistributed", "layers": [{"kind": "relu", "slope": 1}]}, "unknown option 'slope'"),
    ],
)
def test_bad_bodies_are_spec_errors(entry, pattern):
    with pytest.raises(SpecError, match=pattern):
        parse_network({"input": FRAMES, "layers": [entry]})


def test_names_inside_the_body_are_unique_across_the_network():
    layers = [
        {"kind": "timedistributed", "layers": [{"kind": "flatten", "name": "flat"}]},
        {"kind": "flatten", "name": "flat"},
    ]
    with pytest.raises(SpecError, match="name 'flat' is used twice"):
        parse_network({"input": FRAMES, "layers": layers})


def test_to_dict_round_trips_the_body():
    spec = parse_network({"input": FRAMES, "layers": cnn_lstm()})
    again = parse_network(spec.to_dict())
    assert again.to_dict() == spec.to_dict()
    assert again.layers[0].layers[0].name == "conv1"


def test_sequence_of_vectors_and_residual_inside():
    layers = [
        {
            "kind": "timedistributed",
            "layers": [{"kind": "residual", "layers": [{"kind": "linear", "out": 4}, {"kind": "tanh"}]}],
        }
    ]
    spec = parse_network({"input": [7, 3], "layers": layers})
    assert summarize(spec).output_shape == (7, 4)
    assert tuple(build_network(spec)(torch.randn(2, 7, 3)).shape) == (2, 7, 4)
