"""Presets are plain specs that parse, build and run forward, and pass their options through."""

from __future__ import annotations

import pytest
import torch

from layerlab.core.errors import ConfigError, SpecError
from layerlab.nn.build import build_network
from layerlab.nn.presets import PRESETS, preset_options, preset_spec
from layerlab.nn.shapes import summarize
from layerlab.nn.spec import parse_network

torch.set_num_threads(1)

# preset -> (input shape, classes)
CASES = {
    "mlp": ((2,), 3),
    "dynamicnet": ((1, 8, 8), 10),
    "lenet5": ((1, 8, 8), 10),
    "tennet": ((1, 64, 64), 10),
    "signnet": ((1, 64, 64), 10),
    "coordconv-classifier": ((2,), 64 * 64),
    "conv-classifier": ((2,), 64 * 64),
    "deconv-classifier": ((2,), 64 * 64),
    "coordconv-regressor": ((1, 64, 64), 2),  # regression: "classes" are the 2 coordinates
    "conv-regressor": ((1, 64, 64), 2),
}


# autoencoder preset -> input shape (the output has the input's shape)
AUTOENCODERS = {
    "autoencoder": (1, 8, 8),
    "sparse-autoencoder": (64,),
    "conv-autoencoder": (1, 8, 8),
    "denoising-autoencoder": (3, 4, 4),
}


def test_every_preset_has_a_case():
    assert set(CASES) | set(AUTOENCODERS) == set(PRESETS)


@pytest.mark.parametrize("name", sorted(AUTOENCODERS))
def test_autoencoder_presets_give_back_the_input_shape(name):
    shape = AUTOENCODERS[name]
    mapping = preset_spec(name, input_shape=shape, num_classes=None)
    spec = parse_network(mapping, input_shape=shape)
    summary = summarize(spec)
    model = build_network(spec).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *shape))
    assert tuple(out.shape) == (2, *shape) == (2, *summary.output_shape)
    assert "code" in dict(model.named_modules())  # what train.code_l1 and the PCA comparison read
    assert sum(p.numel() for p in model.parameters()) == summary.total_params


def test_autoencoder_presets_check_their_options():
    with pytest.raises(SpecError, match="8x8 is not a multiple of 16"):
        preset_spec("conv-autoencoder", input_shape=(1, 8, 8), num_classes=None, channels=[4, 4, 4, 4])
    with pytest.raises(ConfigError, match="needs images"):
        preset_spec("conv-autoencoder", input_shape=(64,), num_classes=None)
    with pytest.raises(SpecError, match="code must be whole numbers"):
        preset_spec("autoencoder", input_shape=(64,), num_classes=None, code=0)
    sparse = preset_spec("sparse-autoencoder", input_shape=(64,), num_classes=None)
    assert [layer.get("name") for layer in sparse["layers"]][:2] == ["code_linear", "code"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_preset_parses_builds_and_runs(name):
    shape, classes = CASES[name]
    mapping = preset_spec(name, input_shape=shape, num_classes=classes)
    assert mapping["input"] == list(shape) and mapping["classes"] == classes
    spec = parse_network(mapping, input_shape=shape, num_classes=classes)
    summary = summarize(spec)
    model = build_network(spec).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *shape))
    assert tuple(out.shape) == (2, classes) == (2, *summary.output_shape)
    assert sum(p.numel() for p in model.parameters()) == summary.total_params


def test_signnet_is_modest_and_follows_the_rules_of_thumb():
    summary = summarize(parse_network(preset_spec("signnet", input_shape=(1, 64, 64), num_classes=10)))
    assert summary.total_macs < 50e6
    assert summary.warnings == []
    wider = summarize(
        parse_network(preset_spec("signnet", input_shape=(1, 64, 64), num_classes=10, width=24))
    )
    assert wider.total_params > summary.total_params


def test_coordconv_is_a_few_thousand_parameters_and_starts_with_coordconv():
    mapping = preset_spec("coordconv-classifier", input_shape=(2,), num_classes=4096)
    kinds = [layer["kind"] for layer in mapping["layers"]]
    assert kinds[:2] == ["tile", "coordconv2d"] and kinds[-1] == "flatten"
    summary = summarize(parse_network(mapping))
    assert 1000 < summary.total_params < 10000
    baseline = preset_spec("conv-classifier", input_shape=(2,), num_classes=4096)
    assert "coordconv2d" not in [layer["kind"] for layer in baseline["layers"]]


def test_coordinate_presets_check_their_input_and_map_size():
    with pytest.raises(ConfigError, match=r"needs the \(i, j\) coordinate pair"):
        preset_spec("coordconv-classifier", input_shape=(1, 64, 64), num_classes=4096)
    with pytest.raises(SpecError, match="gives 4096 logits but the data has 10 classes"):
        preset_spec("coordconv-classifier", input_shape=(2,), num_classes=10, size=[64, 64])
    small = preset_spec("coordconv-classifier", input_shape=(2,), num_classes=256)
    assert small["layers"][0]["size"] == [16, 16]


def test_options_pass_through():
    lenet = preset_spec("lenet5", input_shape=(1, 32, 32), num_classes=10, channels=[4, 8], dropout=0.5)
    convs = [layer for layer in lenet["layers"] if layer["kind"] == "conv2d"]
    assert [c["out"] for c in convs] == [4, 8] and all(c["padding"] == 0 for c in convs)
    assert any(layer["kind"] == "dropout" for layer in lenet["layers"])
    mlp = preset_spec("mlp", input_shape=(2,), num_classes=3, hidden=[8, 9], activation="tanh")
    linears = [layer for layer in mlp["layers"] if layer["kind"] == "linear"]
    assert [layer["out"] for layer in linears] == [8, 9, "classes"]
    assert linears[0]["init"] == "xavier"
    dynamic = preset_spec("dynamicnet", input_shape=(4,), num_classes=2, max=5, eval_depth=1)
    assert {"min": 0, "max": 5, "eval_depth": 1}.items() <= dynamic["layers"][2].items()


def test_unknown_preset_or_option_suggests():
    with pytest.raises(ConfigError, match="did you mean 'lenet5'"):
        preset_spec("lenet", input_shape=(1, 32, 32), num_classes=10)
    with pytest.raises(SpecError, match="did you mean 'hidden'"):
        preset_spec("mlp", input_shape=(2,), num_classes=3, hiden=[4])
    with pytest.raises(ConfigError, match="needs images"):
        preset_spec("tennet", input_shape=(64,), num_classes=10)
    assert "width" in preset_options("signnet")
