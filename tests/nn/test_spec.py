"""Spec parsing: kinds, options, names, the registry-generated JSON schema."""

from __future__ import annotations

import subprocess
import sys

import jsonschema
import pytest

from layerlab.core.errors import ShapeError, SpecError
from layerlab.nn.spec import LAYER_KINDS, network_json_schema, parse_network

REQUIRED_KINDS = {
    "linear", "conv2d", "coordconv2d", "maxpool2d", "avgpool2d", "global_avgpool", "flatten", "relu",
    "leaky_relu", "tanh", "sigmoid", "gelu", "batchnorm", "batchnorm1d", "batchnorm2d", "dropout", "dropout2d",
    "residual", "lstm", "gru", "tile", "dynamic",
}  # fmt: skip


def test_registry_has_every_required_kind():
    assert set(LAYER_KINDS) >= REQUIRED_KINDS


def test_default_names_count_per_kind_and_are_stable():
    spec = parse_network(
        {"layers": [{"kind": "linear", "out": 4}, {"kind": "relu"}, {"kind": "linear", "out": 2}]}
    )
    assert [layer.name for layer in spec.layers] == ["linear_1", "relu_1", "linear_2"]
    # Adding a layer of another kind, or naming one, does not rename the others.
    spec = parse_network(
        {
            "layers": [
                {"kind": "linear", "out": 4, "name": "hidden"},
                {"kind": "tanh"},
                {"kind": "linear", "out": 2},
            ]
        }
    )
    assert [layer.name for layer in spec.layers] == ["hidden", "tanh_1", "linear_2"]


def test_names_are_unique_including_nested():
    mapping = {
        "layers": [
            {"kind": "relu", "name": "a"},
            {"kind": "residual", "layers": [{"kind": "relu", "name": "a"}]},
        ]
    }
    with pytest.raises(SpecError, match="name 'a' is used twice"):
        parse_network(mapping)


@pytest.mark.parametrize(
    ("entry", "pattern"),
    [
        ({"kind": "conv"}, r"layers\[0\]: unknown layer kind 'conv'; did you mean 'conv2d'\?"),
        (
            {"kind": "conv2d", "out": 3, "kernal": 3},
            r"layers\[0\] \(conv2d\): unknown option 'kernal'.*did you mean 'kernel'",
        ),
        ({"kind": "conv2d", "out": "many"}, r"out: expected an integer"),
        ({"kind": "dropout", "p": 1.5}, r"p must be in \[0, 1\)"),
        ({"kind": "softmax"}, r"softmax is refused: the network ends in logits"),
        ({"kind": "relu", "name": "bad name"}, r"not usable as a module name"),
        ({"kind": "dynamic", "min": 3, "max": 1}, r"need 0 <= min <= max"),
        ({"out": 3}, r"the layer has no kind"),
    ],
)
def test_bad_entries_raise_spec_error_naming_the_layer(entry, pattern):
    with pytest.raises(SpecError, match=pattern):
        parse_network({"layers": [entry]})


def test_unknown_top_level_key_suggests():
    with pytest.raises(SpecError, match="did you mean 'layers'"):
        parse_network({"layer": []})


def test_input_and_classes_must_agree_with_the_data():
    mapping = {"input": [4], "classes": 3, "layers": [{"kind": "linear", "out": "classes"}]}
    assert parse_network(mapping, input_shape=(4,), num_classes=3).num_classes == 3
    with pytest.raises(ShapeError, match=r"the spec says input \[4\] but the data gives \[5\]"):
        parse_network(mapping, input_shape=(5,))
    with pytest.raises(SpecError, match="the spec says classes 3 but the data has 4"):
        parse_network(mapping, num_classes=4)


def test_classes_needed_when_used():
    with pytest.raises(SpecError, match="'classes' is used but the number of classes is unknown"):
        parse_network({"input": [4], "layers": [{"kind": "linear", "out": "classes"}]})


def test_to_dict_round_trips():
    mapping = {
        "input": [1, 8, 8],
        "layers": [
            {"kind": "conv2d", "out": 4, "padding": "same", "name": "c1", "init": "he"},
            {"kind": "residual", "layers": [{"kind": "conv2d", "out": 4, "padding": 1}, {"kind": "relu"}]},
            {"kind": "global_avgpool"},
            {"kind": "linear", "out": "classes"},
        ],
    }
    spec = parse_network(mapping, num_classes=5)
    again = parse_network(spec.to_dict())
    assert again.to_dict() == spec.to_dict()
    assert spec.to_dict()["layers"][1]["layers"][0]["name"] == "conv2d_2"


def test_recurrent_return_option_uses_its_yaml_key():
    spec = parse_network({"input": [5, 3], "layers": [{"kind": "gru", "hidden": 4, "return": "sequence"}]})
    assert spec.layers[0].returns == "sequence"
    assert spec.to_dict()["layers"][0]["return"] == "sequence"


def test_schema_is_generated_from_the_registry():
    schema = network_json_schema()
    assert set(schema["$defs"]) - {"layer"} == set(LAYER_KINDS)
    conv = schema["$defs"]["conv2d"]
    assert conv["required"] == ["kind", "out"]
    assert conv["properties"]["init"]["enum"] == ["default", "xavier", "he"]
    assert "return" in schema["$defs"]["lstm"]["properties"]
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_accepts_a_good_spec_and_rejects_a_bad_option():
    validator = jsonschema.Draft202012Validator(network_json_schema())
    good = {
        "input": [1, 64, 64],
        "layers": [
            {"kind": "conv2d", "out": 6, "kernel": 5, "name": "conv1", "init": "he"},
            {"kind": "residual", "layers": [{"kind": "relu"}]},
            {"kind": "flatten"},
            {"kind": "linear", "out": "classes"},
        ],
    }
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors({"layers": [{"kind": "conv2d", "out": 6, "kernal": 5}]}))


def test_spec_shapes_and_presets_import_no_torch():
    code = (
        "import sys, layerlab.nn.spec, layerlab.nn.shapes, layerlab.nn.presets, layerlab.nn.resolve; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_schema_carries_the_limits_the_parser_checks():
    import jsonschema

    schema = network_json_schema()
    for bad in (
        {"kind": "linear", "out": 0},
        {"kind": "dropout", "p": 1.5},
        {"kind": "conv2d", "out": 4, "padding": -1},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"layers": [bad]}, schema)
        with pytest.raises(SpecError):
            parse_network({"input": [1, 8, 8], "layers": [bad]})
    jsonschema.validate(
        {"layers": [{"kind": "linear", "out": "classes"}, {"kind": "dropout", "p": 0.5}]}, schema
    )


NAN = float("nan")
BAD_SPECS = {
    "negative out": {"layers": [{"kind": "linear", "out": -3}]},
    "zero out": {"layers": [{"kind": "linear", "out": 0}]},
    "zero kernel": {"layers": [{"kind": "conv2d", "out": 4, "kernel": 0}]},
    "float kernel": {"layers": [{"kind": "conv2d", "out": 4, "kernel": 2.5}]},
    "bool kernel": {"layers": [{"kind": "conv2d", "out": 4, "kernel": True}]},
    "NaN dropout": {"layers": [{"kind": "dropout", "p": NAN}]},
    "NaN slope": {"layers": [{"kind": "leaky_relu", "slope": NAN}]},
    "zero eps": {"layers": [{"kind": "batchnorm", "eps": 0.0}]},
    "huge out": {"layers": [{"kind": "linear", "out": 10**9}]},
    "huge float hidden": {"layers": [{"kind": "lstm", "hidden": 1e9}]},
    "huge recurrent stack": {"layers": [{"kind": "gru", "hidden": 4, "layers": 10**6}]},
    "negative pool padding": {"layers": [{"kind": "maxpool2d", "padding": -1}]},
    "negative dynamic min": {"layers": [{"kind": "dynamic", "min": -1}]},
    "negative eval depth": {"layers": [{"kind": "dynamic", "eval_depth": -2}]},
    "zero tile side": {"layers": [{"kind": "tile", "size": [0, 4]}]},
    "empty residual": {"layers": [{"kind": "residual", "layers": []}]},
    "unknown kind": {"layers": [{"kind": "conv3d", "out": 4}]},
    "unknown option": {"layers": [{"kind": "linear", "out": 4, "outs": 5}]},
    "missing out": {"layers": [{"kind": "linear"}]},
    "missing hidden": {"layers": [{"kind": "lstm"}]},
    "missing kind": {"layers": [{"out": 4}]},
    "string out": {"layers": [{"kind": "linear", "out": "ten"}]},
    "list stride": {"layers": [{"kind": "conv2d", "out": 4, "stride": [2]}]},
    "string bias": {"layers": [{"kind": "linear", "out": 4, "bias": "maybe"}]},
    "zero classes": {"classes": 0, "layers": [{"kind": "linear", "out": "classes"}]},
    "huge classes": {"classes": 10**7, "layers": [{"kind": "linear", "out": "classes"}]},
    "zero input": {"input": [1, 0, 4], "layers": [{"kind": "flatten"}]},
    "huge input": {"input": [10**9], "layers": [{"kind": "relu"}]},
    "no layers": {"layers": []},
    "unknown top key": {"layer": [{"kind": "relu"}]},
}


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
def test_bad_specs_are_refused_by_both_the_parser_and_the_schema(name):
    bad = BAD_SPECS[name]
    validator = jsonschema.Draft202012Validator(network_json_schema())
    assert list(validator.iter_errors(bad)), f"the schema accepts {name}"
    with pytest.raises(SpecError):
        parse_network(bad)


def test_the_schema_accepts_what_the_parser_accepts():
    validator = jsonschema.Draft202012Validator(network_json_schema())
    for good in (
        {"input": [3, 32, 32], "classes": 10, "layers": [{"kind": "conv2d", "out": 8, "padding": "same"}]},
        {"layers": [{"kind": "dropout", "p": 0.0}, {"kind": "batchnorm", "eps": 1e-3}]},
        {"layers": [{"kind": "lstm", "hidden": 8, "return": "sequence", "dropout": 0.2}]},
        {"layers": [{"kind": "tile", "size": [8, 8]}, {"kind": "leaky_relu", "slope": 0.2}]},
    ):
        assert list(validator.iter_errors(good)) == []
        parse_network(good)


def test_a_network_with_too_many_parameters_is_refused():
    with pytest.raises(SpecError, match="parameters, above the limit"):
        parse_network({"input": [60000], "layers": [{"kind": "linear", "out": 60000}]})


def test_deeply_nested_spec_is_refused_before_recursing():
    spec: dict = {"kind": "relu"}
    for _ in range(5000):  # deeper than Python's recursion limit
        spec = {"kind": "residual", "layers": [spec]}
    with pytest.raises(SpecError, match="nest more than 32"):
        parse_network({"layers": [spec]})
