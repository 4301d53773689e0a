"""Every kind builds, runs forward and gives the shape and parameter count shapes.py predicts."""

from __future__ import annotations

import math

import pytest
import torch

from layerlab.nn.build import build_network
from layerlab.nn.layers import BUILDERS
from layerlab.nn.shapes import summarize
from layerlab.nn.spec import LAYER_KINDS, parse_network

torch.set_num_threads(1)

IMAGE = [3, 8, 8]
SEQUENCE = [6, 4]
VECTOR = [5]

# kind -> (input shape, layers); every registered kind must appear here.
CASES = {
    "linear": (VECTOR, [{"kind": "linear", "out": 7}]),
    "conv2d": (IMAGE, [{"kind": "conv2d", "out": 4, "kernel": 3, "stride": 1, "padding": 1}]),
    "coordconv2d": (IMAGE, [{"kind": "coordconv2d", "out": 4, "kernel": 3, "with_r": True}]),
    "maxpool2d": (IMAGE, [{"kind": "maxpool2d", "kernel": 3, "stride": 1, "padding": 1}]),
    "avgpool2d": (IMAGE, [{"kind": "avgpool2d", "kernel": 2}]),
    "global_avgpool": (IMAGE, [{"kind": "global_avgpool"}]),
    "flatten": (IMAGE, [{"kind": "flatten"}]),
    "relu": (VECTOR, [{"kind": "relu"}]),
    "leaky_relu": (IMAGE, [{"kind": "leaky_relu", "slope": 0.2}]),
    "tanh": (SEQUENCE, [{"kind": "tanh"}]),
    "sigmoid": (VECTOR, [{"kind": "sigmoid"}]),
    "gelu": (VECTOR, [{"kind": "gelu"}]),
    "batchnorm": (IMAGE, [{"kind": "batchnorm"}, {"kind": "flatten"}, {"kind": "batchnorm"}]),
    "batchnorm1d": (VECTOR, [{"kind": "batchnorm1d"}]),
    "batchnorm2d": (IMAGE, [{"kind": "batchnorm2d"}]),
    "dropout": (VECTOR, [{"kind": "dropout", "p": 0.3}]),
    "dropout2d": (IMAGE, [{"kind": "dropout2d"}]),
    "residual": (
        IMAGE,
        [
            {
                "kind": "residual",
                "name": "res",
                "layers": [{"kind": "conv2d", "out": 6, "kernel": 2, "stride": 2}, {"kind": "relu"}],
            }
        ],
    ),
    "lstm": (SEQUENCE, [{"kind": "lstm", "hidden": 3, "layers": 2, "bidirectional": True}]),
    "gru": (SEQUENCE, [{"kind": "gru", "hidden": 3, "return": "sequence"}]),
    "tile": ([2], [{"kind": "tile", "size": [4, 5]}]),
    "dynamic": (VECTOR, [{"kind": "dynamic", "min": 1, "max": 2}]),
    "convtranspose2d": (
        IMAGE,
        [{"kind": "convtranspose2d", "out": 2, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1}],
    ),
    "upsample": (IMAGE, [{"kind": "upsample", "scale": 1.5, "mode": "bilinear"}]),
    "reshape": (IMAGE, [{"kind": "reshape", "shape": [-1, 4, 4]}]),
    "unflatten": (VECTOR, [{"kind": "unflatten", "shape": [1, 5]}]),
    "timedistributed": (
        [4, *IMAGE],
        [
            {
                "kind": "timedistributed",
                "layers": [{"kind": "conv2d", "out": 2, "kernel": 3}, {"kind": "flatten"}],
            },
            {"kind": "lstm", "hidden": 3},
        ],
    ),
}


def test_every_kind_has_a_case_and_a_builder():
    assert set(CASES) == set(LAYER_KINDS)
    assert set(BUILDERS) == set(LAYER_KINDS.values())


@pytest.mark.parametrize("kind", sorted(CASES))
def test_kind_builds_and_matches_shapes(kind):
    input_shape, layers = CASES[kind]
    spec = parse_network({"input": input_shape, "layers": layers})
    summary = summarize(spec)
    model = build_network(spec)
    for mode in (model.train, model.eval):
        mode()
        out = model(torch.randn(3, *input_shape))
        assert tuple(out.shape) == (3, *summary.output_shape)
    assert sum(p.numel() for p in model.parameters()) == summary.total_params


def test_residual_with_vector_projection():
    spec = parse_network(
        {"input": [5], "layers": [{"kind": "residual", "layers": [{"kind": "linear", "out": 3}]}]}
    )
    model = build_network(spec)
    assert tuple(model(torch.randn(2, 5)).shape) == (2, 3)
    assert sum(p.numel() for p in model.parameters()) == summarize(spec).total_params == 2 * (5 * 3 + 3)


def test_residual_without_projection_adds_the_input():
    spec = parse_network(
        {
            "input": [4],
            "layers": [{"kind": "residual", "layers": [{"kind": "linear", "out": 4, "bias": False}]}],
        }
    )
    model = build_network(spec)
    with torch.no_grad():
        model.residual_1.linear_1.weight.zero_()
    x = torch.randn(2, 4)
    assert torch.equal(model(x), x)


def test_state_dict_keys_are_layer_names():
    spec = parse_network(
        {
            "input": [1, 8, 8],
            "layers": [
                {"kind": "coordconv2d", "out": 2, "name": "coord"},
                {
                    "kind": "residual",
                    "name": "res",
                    "layers": [{"kind": "conv2d", "out": 2, "padding": 1, "name": "conv_a"}],
                },
                {"kind": "flatten"},
                {"kind": "linear", "out": 3, "name": "head"},
            ],
        }
    )
    keys = set(build_network(spec).state_dict())
    assert {"coord.weight", "coord.bias", "res.conv_a.weight", "head.weight", "head.bias"} <= keys
    assert "coord.coords" not in keys  # derived from the shape, not saved


def test_name_clashing_with_module_attribute_is_a_spec_error():
    from layerlab.core.errors import SpecError

    spec = parse_network({"input": [4], "layers": [{"kind": "relu", "name": "forward"}]})
    with pytest.raises(SpecError, match="clashes"):
        build_network(spec)


@pytest.mark.parametrize(("scheme", "gain"), [("he", 2.0), ("xavier", 1.0)])
def test_init_scales_by_fan_in(scheme, gain):
    torch.manual_seed(0)
    spec = parse_network(
        {"input": [16, 12, 12], "layers": [{"kind": "conv2d", "out": 64, "kernel": 3, "init": scheme}]}
    )
    conv = build_network(spec).conv2d_1
    fan_in = 16 * 3 * 3
    assert conv.weight.std().item() == pytest.approx(math.sqrt(gain / fan_in), rel=0.05)
    assert torch.count_nonzero(conv.bias) == 0


def test_default_init_keeps_pytorch_init():
    spec = parse_network({"input": [100], "layers": [{"kind": "linear", "out": 50}]})
    weight = build_network(spec).linear_1.weight
    assert weight.abs().max().item() <= 1 / math.sqrt(100) + 1e-6  # PyTorch's uniform(-1/sqrt(n), 1/sqrt(n))


def test_coordconv_channels_span_minus_one_to_one():
    spec = parse_network({"input": [1, 4, 5], "layers": [{"kind": "coordconv2d", "out": 1, "with_r": True}]})
    coords = build_network(spec).coordconv2d_1.coords
    assert coords.shape == (3, 4, 5)
    # The official AddCoords order (uber-research/CoordConv): x (the column) first, then y (the row).
    assert torch.allclose(coords[0, 0, :], torch.linspace(-1, 1, 5))  # x runs along the columns
    assert torch.allclose(coords[0, :, 2], torch.zeros(4))  # ... and is constant down a column
    assert torch.allclose(coords[1, :, 0], torch.linspace(-1, 1, 4))  # y runs down the rows
    assert torch.allclose(coords[1, 1, :], torch.full((5,), -1 / 3))  # ... and is constant along a row
    assert torch.allclose(coords[2], torch.sqrt(coords[0] ** 2 + coords[1] ** 2))


def test_dynamic_depth_follows_torch_global_rng_and_is_fixed_in_eval():
    spec = parse_network({"input": [4], "layers": [{"kind": "dynamic", "min": 0, "max": 3, "eval_depth": 2}]})
    model = build_network(spec)
    layer = model.dynamic_1
    torch.manual_seed(7)
    first = [layer.depth() for _ in range(20)]
    torch.manual_seed(7)
    assert [layer.depth() for _ in range(20)] == first
    assert set(first) <= {0, 1, 2, 3} and len(set(first)) > 1
    model.eval()
    x = torch.randn(2, 4)
    expected = torch.relu(layer.linear(torch.relu(layer.linear(x))))
    assert torch.allclose(model(x), expected)


def test_recurrent_last_is_the_final_hidden_state():
    torch.manual_seed(0)
    spec = parse_network({"input": [5, 2], "layers": [{"kind": "lstm", "hidden": 3, "name": "rnn"}]})
    model = build_network(spec)
    x = torch.randn(2, 5, 2)
    sequence, _ = model.rnn.rnn(x)
    assert torch.allclose(model(x), sequence[:, -1])
