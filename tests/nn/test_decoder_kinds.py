"""Decoder kinds: convtranspose2d, upsample, unflatten and reshape: shape arithmetic, costs, errors, torch parity."""

from __future__ import annotations

import jsonschema
import pytest
import torch

from layerlab.core.errors import ShapeError, SpecError
from layerlab.nn.build import build_network
from layerlab.nn.shapes import summarize
from layerlab.nn.spec import network_json_schema, parse_network

torch.set_num_threads(1)


def summary_of(input_shape, layers):
    return summarize(parse_network({"input": list(input_shape), "layers": layers}))


def run(input_shape, layers):
    spec = parse_network({"input": list(input_shape), "layers": layers})
    model = build_network(spec).eval()
    out = model(torch.randn(2, *input_shape))
    return summarize(spec), model, out


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "output_padding"),
    [(7, 2, 2, 0, 0), (7, 3, 2, 1, 1), (1, 4, 1, 0, 0), (5, 5, 3, 2, 2), (16, 1, 1, 0, 0)],
)
def test_transposed_conv_size_is_h_minus_1_times_s_minus_2p_plus_k_plus_op(
    size, kernel, stride, padding, output_padding
):
    layer = {
        "kind": "convtranspose2d",
        "out": 3,
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
    }
    summary, model, out = run([2, size, size], [layer])
    side = (size - 1) * stride - 2 * padding + kernel + output_padding
    assert summary.output_shape == (3, side, side) == tuple(out.shape[1:])
    assert summary.total_params == 2 * 3 * kernel * kernel + 3 == sum(p.numel() for p in model.parameters())
    assert summary.total_macs == 2 * 3 * kernel * kernel * size * size


def test_transposed_conv_refuses_a_non_positive_output():
    layer = {"kind": "convtranspose2d", "out": 1, "kernel": 1, "padding": 2, "name": "up"}
    with pytest.raises(ShapeError) as info:
        summary_of([1, 2, 2], [layer])
    text = str(info.value)
    assert text.startswith("convtranspose2d #0 (up): input 1x2x2, (2 - 1)*1 - 2*2 + 1 + 0 = -2 < 1")
    assert "less padding" in text


def test_transposed_conv_output_padding_must_be_below_stride():
    with pytest.raises(SpecError, match="output_padding must be smaller than the stride"):
        parse_network({"layers": [{"kind": "convtranspose2d", "out": 1, "stride": 2, "output_padding": 2}]})


def test_transposed_conv_warns_about_checkerboards():
    summary = summary_of([1, 4, 4], [{"kind": "convtranspose2d", "out": 1, "kernel": 3, "stride": 2}])
    assert any("checkerboard" in w for w in summary.warnings)
    clean = summary_of([1, 4, 4], [{"kind": "convtranspose2d", "out": 1, "kernel": 4, "stride": 2}])
    assert not any("checkerboard" in w for w in clean.warnings)


def test_transposed_conv_needs_maps():
    with pytest.raises(ShapeError, match=r"convtranspose2d needs feature maps \(C, H, W\).*unflatten"):
        summary_of([12], [{"kind": "convtranspose2d", "out": 1}])


@pytest.mark.parametrize(
    ("scale", "mode", "side"), [(2, "nearest", 10), (1.5, "bilinear", 7), (0.5, "nearest", 2)]
)
def test_upsample_by_scale_floors_like_torch(scale, mode, side):
    summary, model, out = run([3, 5, 5], [{"kind": "upsample", "scale": scale, "mode": mode}])
    assert summary.output_shape == (3, side, side) == tuple(out.shape[1:])
    assert summary.total_params == 0
    reference = torch.nn.functional.interpolate(torch.ones(1, 3, 5, 5), scale_factor=scale, mode=mode)
    assert tuple(reference.shape[2:]) == (side, side)


def test_upsample_nearest_repeats_pixels_and_size_is_exact():
    spec = parse_network({"input": [1, 2, 2], "layers": [{"kind": "upsample", "size": [4, 6]}]})
    x = torch.arange(4.0).reshape(1, 1, 2, 2)
    out = build_network(spec)(x)
    assert out.shape == (1, 1, 4, 6)
    assert out[0, 0, 0].tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize(
    ("layer", "pattern"),
    [
        ({"kind": "upsample"}, "exactly one of scale and size"),
        ({"kind": "upsample", "scale": 2, "size": [4, 4]}, "exactly one of scale and size"),
        ({"kind": "upsample", "scale": 0}, "scale must be in"),
        ({"kind": "upsample", "scale": -2}, "scale must be in"),
        ({"kind": "upsample", "scale": float("nan")}, "scale"),
        ({"kind": "upsample", "scale": 1000}, "scale must be in"),
        ({"kind": "upsample", "size": [4]}, r"size must be \[H, W\]"),
        ({"kind": "upsample", "size": [0, 4]}, "size"),
        ({"kind": "upsample", "scale": 2, "mode": "cubic"}, "mode"),
    ],
)
def test_upsample_bad_options(layer, pattern):
    with pytest.raises(SpecError, match=pattern):
        parse_network({"layers": [layer]})


def test_upsample_scale_to_nothing_is_a_shape_error():
    with pytest.raises(ShapeError, match=r"floor\(side\*scale\) < 1"):
        summary_of([1, 3, 3], [{"kind": "upsample", "scale": 0.25}])


def test_unflatten_inverts_flatten_and_reshape_resolves_minus_one():
    summary, _, out = run([784], [{"kind": "unflatten", "shape": [16, 7, 7]}])
    assert summary.output_shape == (16, 7, 7) == tuple(out.shape[1:])
    summary, _, out = run([2, 6, 4], [{"kind": "reshape", "shape": [-1, 4]}])
    assert summary.output_shape == (12, 4) == tuple(out.shape[1:])
    x = torch.arange(48.0).reshape(1, 2, 6, 4)
    spec = parse_network({"input": [2, 6, 4], "layers": [{"kind": "reshape", "shape": [4, 12]}]})
    assert torch.equal(build_network(spec)(x), x.reshape(1, 4, 12))


def test_reshape_count_mismatch_names_both_counts():
    with pytest.raises(ShapeError) as info:
        summary_of([10], [{"kind": "reshape", "shape": [3, 4], "name": "r"}])
    assert str(info.value).startswith(
        "reshape #0 (r): input 10, 10 values cannot be reshaped to 3x4 (12 values)"
    )
    with pytest.raises(ShapeError, match="10 is not a multiple of 3"):
        summary_of([10], [{"kind": "reshape", "shape": [3, -1]}])


def test_unflatten_needs_a_vector():
    with pytest.raises(ShapeError, match=r"unflatten needs a vector \(F,\); add \{kind: flatten\}"):
        summary_of([1, 4, 4], [{"kind": "unflatten", "shape": [16]}])


@pytest.mark.parametrize(
    ("shape", "pattern"),
    [
        ([], "shape"),
        ([0, 4], "at least 1"),
        ([-1, -1], "at most one"),
        ([-2, 4], "shape"),
        ([1, 1, 1, 1, 1], "1 to 4"),
    ],
)
def test_reshape_bad_targets(shape, pattern):
    with pytest.raises(SpecError, match=pattern):
        parse_network({"layers": [{"kind": "reshape", "shape": shape}]})


def test_schema_lists_the_new_kinds_and_refuses_bad_values():
    schema = network_json_schema()
    for kind in ("convtranspose2d", "upsample", "reshape", "unflatten"):
        assert kind in schema["$defs"]
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors({"layers": [{"kind": "convtranspose2d", "out": 0}]}))
    assert list(validator.iter_errors({"layers": [{"kind": "upsample", "scale": -1}]}))
    assert not list(validator.iter_errors({"layers": [{"kind": "unflatten", "shape": [4, 2, 2]}]}))


def test_a_small_decoder_runs_end_to_end():
    layers = [
        {"kind": "linear", "out": 8 * 4 * 4},
        {"kind": "unflatten", "shape": [8, 4, 4]},
        {"kind": "convtranspose2d", "out": 4, "kernel": 2, "stride": 2},
        {"kind": "relu"},
        {"kind": "upsample", "scale": 2, "mode": "bilinear"},
        {"kind": "conv2d", "out": 1, "kernel": 3, "padding": 1},
    ]
    summary, model, out = run([8], layers)
    assert summary.output_shape == (1, 16, 16) == tuple(out.shape[1:])
    assert summary.total_params == sum(p.numel() for p in model.parameters())
