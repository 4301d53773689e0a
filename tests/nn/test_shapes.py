"""Shape arithmetic, shape errors that say how to fix them, and the CS231n rule-of-thumb warnings."""

from __future__ import annotations

import pytest

from layerlab.core.errors import ShapeError
from layerlab.nn.shapes import summarize
from layerlab.nn.spec import parse_network


def summary_of(input_shape, layers, classes=None):
    return summarize(parse_network({"input": list(input_shape), "layers": layers}, num_classes=classes))


def test_conv_arithmetic_params_and_macs():
    summary = summary_of([3, 32, 32], [{"kind": "conv2d", "out": 10, "kernel": 5, "stride": 1, "padding": 2}])
    row = summary.rows[0]
    assert row.output_shape == (10, 32, 32)
    # Weights shared across positions count once: 10 * 3*5*5 + 10 biases.
    assert row.params == 760
    assert row.macs == 10 * 3 * 5 * 5 * 32 * 32


def test_stride_two_conv_and_pool():
    summary = summary_of(
        [3, 227, 227],
        [
            {"kind": "conv2d", "out": 96, "kernel": 11, "stride": 4},
            {"kind": "maxpool2d", "kernel": 3, "stride": 2},
        ],
    )
    assert [row.output_shape for row in summary.rows] == [
        (96, 55, 55),
        (96, 27, 27),
    ]  # AlexNet's first layers


def test_impossible_conv_names_layer_shape_arithmetic_and_fix():
    with pytest.raises(ShapeError) as info:
        summary_of([1, 5, 5], [{"kind": "relu"}, {"kind": "conv2d", "out": 2, "kernel": 7, "name": "conv2"}])
    assert str(info.value) == (
        "conv2d #1 (conv2): input 1x5x5, kernel 7: (5 - 7 + 2*0)/1 + 1 = -1 < 1; "
        "use padding=1 or kernel=5 (padding=3 keeps 5x5)"
    )


def test_fractional_conv_output_is_floored_with_a_warning():
    # The canonical ResNet downsampling conv: 3x3, stride 2, padding 1 on 32x32 gives 16x16 in torch.
    summary = summary_of([3, 32, 32], [{"kind": "conv2d", "out": 8, "kernel": 3, "stride": 2, "padding": 1}])
    assert summary.rows[0].output_shape == (8, 16, 16)
    assert summary.rows[0].warnings == [
        "(32 - 3 + 2*1)/2 + 1 = 16.5: torch floors it to 16, the last 1 row(s)/column(s) are dropped"
    ]
    summary = summary_of([1, 6, 6], [{"kind": "conv2d", "out": 2, "kernel": 3, "stride": 2}])
    assert summary.rows[0].output_shape == (2, 2, 2)


def test_floored_conv_shape_matches_torch():
    import torch

    from layerlab.nn.build import build_network

    spec = parse_network(
        {
            "input": [3, 32, 32],
            "layers": [{"kind": "conv2d", "out": 8, "kernel": 3, "stride": 2, "padding": 1}],
        }
    )
    assert tuple(build_network(spec)(torch.zeros(1, 3, 32, 32)).shape[1:]) == summarize(spec).output_shape


def test_rank_errors_say_what_to_add():
    with pytest.raises(ShapeError, match=r"linear #0 \(linear_1\): input 1x4x4, .*add \{kind: flatten\}"):
        summary_of([1, 4, 4], [{"kind": "linear", "out": 2}])
    with pytest.raises(ShapeError, match=r"lstm needs a sequence \(T, F\)"):
        summary_of([8], [{"kind": "lstm", "hidden": 4}])
    with pytest.raises(ShapeError, match="conv2d needs an image") as exc:
        summary_of([8], [{"kind": "conv2d", "out": 4}])
    assert str(exc.value).count("(C, H, W)") == 1 and "{kind: tile, size: [H, W]}" in str(exc.value)


def test_residual_projection_and_impossible_body():
    summary = summary_of(
        [4, 8, 8], [{"kind": "residual", "layers": [{"kind": "conv2d", "out": 8, "kernel": 2, "stride": 2}]}]
    )
    block = summary.rows[0]
    assert block.output_shape == (8, 4, 4)
    assert block.params == (8 * 4 * 2 * 2 + 8) + (8 * 4 + 8)  # body conv + 1x1 stride-2 projection
    assert [row.depth for row in summary.rows] == [0, 1]
    with pytest.raises(ShapeError, match="no 1x1 conv or linear projection"):
        summary_of([4, 8, 8], [{"kind": "residual", "layers": [{"kind": "flatten"}]}])


def test_recurrent_parameter_counts():
    summary = summary_of([7, 3], [{"kind": "lstm", "hidden": 5, "layers": 2, "bidirectional": True}])
    first = 2 * (4 * 5 * (3 + 5) + 8 * 5)
    second = 2 * (4 * 5 * (10 + 5) + 8 * 5)
    assert summary.total_params == first + second
    assert summary.output_shape == (10,)


def test_warning_padding_shrinks_maps():
    summary = summary_of([1, 32, 32], [{"kind": "conv2d", "out": 4, "kernel": 5}])
    assert summary.rows[0].warnings == [
        "stride 1, padding 0 shrinks 32x32 to 28x28; padding=2 ((F-1)/2) keeps 32x32"
    ]
    assert summary_of([1, 32, 32], [{"kind": "conv2d", "out": 4, "kernel": 5, "padding": 2}]).warnings == []


def test_warning_large_pooling_window_and_dropped_rows():
    summary = summary_of([1, 32, 32], [{"kind": "maxpool2d", "kernel": 4}])
    assert any("pooling window 4" in w for w in summary.warnings)
    summary = summary_of([1, 7, 7], [{"kind": "maxpool2d", "kernel": 2}])
    assert summary.output_shape == (1, 3, 3)
    assert any("the last 1 row(s)/column(s) are dropped" in w for w in summary.rows[0].warnings)


def test_warning_input_not_divisible_by_two():
    summary = summary_of([1, 30, 30], [{"kind": "conv2d", "out": 2, "kernel": 3, "padding": 1}])
    assert any("cannot be halved twice" in w for w in summary.warnings)
    assert not any(
        "halved" in w for w in summary_of([1, 32, 32], [{"kind": "conv2d", "out": 2, "kernel": 1}]).warnings
    )


def test_warning_one_fc_layer_holds_most_parameters():
    layers = [
        {"kind": "conv2d", "out": 8, "kernel": 3, "padding": 1},
        {"kind": "flatten"},
        {"kind": "linear", "out": 100},
    ]
    summary = summary_of([1, 32, 32], layers)
    assert any(w.startswith("linear_1 holds") for w in summary.warnings)
    pooled = [layers[0], {"kind": "global_avgpool"}, {"kind": "linear", "out": 4}]
    assert not any("holds" in w for w in summary_of([1, 32, 32], pooled).warnings)


def test_to_dict_is_json_ready():
    summary = summary_of([2], [{"kind": "linear", "out": 3}])
    data = summary.to_dict()
    assert data["total_params"] == 9 and data["output_shape"] == [3]
    assert data["rows"][0]["input_shape"] == [2]


def _nested(levels: int) -> list[dict]:
    layers: list[dict] = [{"kind": "relu"}]
    for _ in range(levels):
        layers = [{"kind": "residual", "layers": [*layers, {"kind": "linear", "out": 4}]}]
    return layers


def test_nested_residual_blocks_are_inferred_once_per_layer(monkeypatch):
    from layerlab.nn.kinds.activation import ReLUSpec

    calls = []
    original = ReLUSpec.output_shape

    def counted(self, shape, ctx):
        calls.append(1)
        return original(self, shape, ctx)

    monkeypatch.setattr(ReLUSpec, "output_shape", counted)
    summary = summary_of([4], _nested(30))
    assert len(summary.rows) == 30 * 2 + 1
    assert summary.output_shape == (4,)
    # parse_network walks the spec once and summarize once: linear, where 3^30 walks were made before
    assert len(calls) == 2


def test_nesting_deeper_than_the_limit_is_a_spec_error():
    from layerlab.core.errors import SpecError
    from layerlab.nn.kinds.base import MAX_NESTING

    summary_of([4], _nested(MAX_NESTING))
    with pytest.raises(SpecError) as info:
        summary_of([4], _nested(MAX_NESTING + 1))
    assert (
        f"at most {MAX_NESTING}" in info.value.one_line()
        or f"more than {MAX_NESTING}" in info.value.one_line()
    )


def test_nested_residual_costs_match_the_built_network():
    from layerlab.nn.build import build_network

    spec = parse_network({"input": [4], "layers": _nested(5)})
    model = build_network(spec)
    assert summarize(spec).total_params == sum(p.numel() for p in model.parameters())
