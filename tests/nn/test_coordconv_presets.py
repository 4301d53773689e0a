"""The CoordConv study's presets: the paper's deconv classifier and the coordinate regressors."""

from __future__ import annotations

import pytest
import torch

from layerlab.core.errors import ConfigError
from layerlab.nn.build import build_network
from layerlab.nn.presets import preset_spec
from layerlab.nn.shapes import summarize
from layerlab.nn.spec import parse_network


def network(name: str, shape, classes, **options):
    spec = parse_network(preset_spec(name, input_shape=shape, num_classes=classes, **options))
    return spec, build_network(spec)


def test_deconv_classifier_grows_a_point_to_the_canvas_by_doubling():
    spec, model = network("deconv-classifier", (2,), 4096)
    rows = summarize(spec).rows
    shapes = [tuple(r.output_shape) for r in rows if r.kind == "convtranspose2d"]
    assert shapes == [(64, 2, 2), (64, 4, 4), (64, 8, 8), (32, 16, 16), (32, 32, 32), (1, 64, 64)]
    assert model(torch.zeros(3, 2)).shape == (3, 4096)
    assert sum(p.numel() for p in model.parameters()) == 103_585  # the official widths, mul 1


def test_regressors_give_two_coordinates_from_a_one_hot_image():
    _, coordconv = network("coordconv-regressor", (1, 64, 64), 2)
    _, conv = network("conv-regressor", (1, 64, 64), 2)
    x = torch.zeros(5, 1, 64, 64)
    assert coordconv(x).shape == (5, 2) and conv(x).shape == (5, 2)
    assert sum(p.numel() for p in coordconv.parameters()) == 906  # 10-100x fewer than the conv baseline
    assert sum(p.numel() for p in conv.parameters()) == 72_850


def test_the_papers_coordconv_classifier_has_7553_parameters():
    _, model = network("coordconv-classifier", (2,), 4096, channels=[32, 32, 64, 64])
    assert sum(p.numel() for p in model.parameters()) == 7_553


@pytest.mark.parametrize(
    ("name", "shape", "classes", "options", "message"),
    [
        ("deconv-classifier", (2,), 4096, {"channels": [8, 8]}, "5 hidden channel sizes"),
        ("deconv-classifier", (2,), 48 * 48, {}, "power-of-2 side"),
        ("deconv-classifier", (2,), 4096, {"kernel": 4}, "kernel must be odd"),
        ("deconv-classifier", (1, 64, 64), 4096, {}, "needs the \\(i, j\\) coordinate pair"),
        ("coordconv-regressor", (2,), 2, {}, "needs a square image"),
        ("conv-regressor", (1, 64, 32), 2, {}, "needs a square image"),
        ("coordconv-regressor", (1, 64, 64), 2, {"channels": [0]}, "whole numbers >= 1"),
    ],
)
def test_bad_preset_input_is_one_clear_error(name, shape, classes, options, message):
    with pytest.raises(ConfigError, match=message):
        preset_spec(name, input_shape=shape, num_classes=classes, **options)
