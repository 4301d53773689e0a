"""The model section becomes a checked network: layers, a preset with options, or a spec file."""

from __future__ import annotations

import json

import pytest

from layerlab.core.errors import ConfigError, ShapeError, SpecError
from layerlab.nn.resolve import load_spec_file, network_for
from layerlab.train.config import ModelConfig


def test_preset_with_options():
    spec = network_for(ModelConfig(preset="mlp", options={"hidden": [7]}), input_shape=(2,), num_classes=3)
    assert [layer.name for layer in spec.layers] == ["fc1", "relu_1", "out"]
    assert spec.input_shape == (2,) and spec.num_classes == 3


def test_default_is_mlp():
    spec = network_for(ModelConfig(), input_shape=(2,), num_classes=3)
    assert spec.layers[0].name == "fc1"


def test_layers_with_shapes_checked_against_the_data():
    cfg = ModelConfig(layers=[{"kind": "conv2d", "out": 4, "kernel": 9}, {"kind": "flatten"}])
    with pytest.raises(ShapeError, match="input 1x8x8, kernel 9"):
        network_for(cfg, input_shape=(1, 8, 8), num_classes=2)
    with pytest.raises(ConfigError, match="options apply to presets only"):
        network_for(ModelConfig(layers=[{"kind": "relu"}], options={"x": 1}), input_shape=(2,), num_classes=2)


def test_spec_file_as_preset(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"layers": [{"kind": "linear", "out": "classes"}]}))
    spec = network_for(ModelConfig(preset=str(path)), input_shape=(4,), num_classes=2)
    assert spec.layers[0].kind == "linear"


def test_load_spec_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("layers: [unclosed\n")
    with pytest.raises(SpecError, match="bad.yaml"):
        load_spec_file(bad)
