"""Attributions of one prediction (Captum) and their model-randomization sanity score."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from layerlab.core.errors import ConfigError, DataError
from layerlab.inference.inspect import attributions
from layerlab.inference.inspect.attributions import (
    METHODS,
    SANITY_THRESHOLD,
    attribute_all,
    attributions_index,
    attributions_write,
    randomized_copy,
    rank_correlation,
)


def tiny_convnet(channels: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 6, 3, padding=1), nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 2),
    )  # fmt: skip


def quadrant_data(channels: int, n: int = 256, seed: int = 0):
    """Noise images; class 1 when the bright square sits in the left half, 0 in the right half."""
    gen = torch.Generator().manual_seed(seed)
    x = 0.2 * torch.randn(n, channels, 12, 12, generator=gen)
    y = torch.randint(0, 2, (n,), generator=gen)
    for i in range(n):
        row = int(torch.randint(0, 9, (1,), generator=gen))
        col = int(torch.randint(0, 3, (1,), generator=gen)) + (0 if y[i] == 1 else 6)
        x[i, :, row : row + 3, col : col + 3] += 2.0
    return x, y


@pytest.fixture(scope="module", params=[1, 3], ids=["gray", "rgb"])
def trained(request):
    channels = request.param
    torch.manual_seed(0)
    model = tiny_convnet(channels)
    x, y = quadrant_data(channels)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    accuracy = float((model(x).argmax(1) == y).float().mean())
    assert accuracy > 0.9  # the model really learned the task the maps are about
    return model, x[0]


def test_every_method_gives_a_map_per_pixel_with_a_score(trained, tmp_path):
    model, x = trained
    result = attribute_all(model, x, seed=0)
    assert result["layer"] == "2" and result["randomization"] == "full"
    assert set(result["methods"]) == set(METHODS)
    for name, item in result["methods"].items():
        assert item["map"].shape == (12, 12), name
        assert -1.0 <= item["sanity"] <= 1.0
    assert (result["methods"]["saliency"]["map"] >= 0).all()
    index = attributions_index(result, x, tmp_path)
    assert {item["image"] for item in index["methods"].values()} == {f"attr_{m}.png" for m in METHODS}
    assert (tmp_path / "attr_grad_cam.png").read_bytes()[:4] == b"\x89PNG"
    json.dumps(index)  # the report's index.json holds it as is
    listed = attributions_write(result, x, tmp_path / "list")
    assert [entry["method"] for entry in listed] == list(METHODS)


def test_the_reports_call_writes_the_images_and_returns_json(trained, tmp_path):
    model, x = trained
    index = attribute_all(model, x.unsqueeze(0), target=1, conv_layer="0", out_dir=tmp_path)
    assert index["target"] == 1 and index["layer"] == "0"
    assert json.loads(json.dumps(index))["methods"]["saliency"]["image"] == "attr_saliency.png"


def test_randomizing_the_weights_changes_the_saliency_of_a_trained_model(trained):
    model, x = trained
    item = attribute_all(model, x, methods=["saliency"])["methods"]["saliency"]
    assert abs(item["sanity"]) < 0.3 < SANITY_THRESHOLD and not item["flagged"]
    # The saliency of the trained model is on the bright square: where the class is decided.
    saliency = item["map"]
    square = (x.abs().sum(0) > 1.0).numpy()
    assert saliency[square].mean() > saliency[~square].mean()


def test_a_map_that_ignores_the_model_is_flagged(trained, monkeypatch):
    model, x = trained

    def the_input(model, x, target, layer):  # a "method" returning the picture, whatever the weights
        return x[0].abs().sum(0).detach().numpy()

    monkeypatch.setitem(attributions.REGISTRY, "input", the_input)
    item = attribute_all(model, x, methods=["input"])["methods"]["input"]
    assert item["sanity"] == pytest.approx(1.0) and item["flagged"]


def test_the_cascade_randomizes_from_the_top_layer_down(trained):
    model, x = trained
    item = attribute_all(model, x, methods=["saliency"], randomization="cascade")["methods"]["saliency"]
    steps = item["cascade"]
    assert [step["layer"] for step in steps] == ["6", "2", "0"]  # linear, then the convs, top first
    assert item["sanity"] == steps[-1]["sanity"] and item["sanity"] < SANITY_THRESHOLD
    assert not item["flagged"]
    with pytest.raises(ConfigError, match="unknown randomization 'half'"):
        attribute_all(model, x, methods=["saliency"], randomization="half")


def test_randomized_copy_changes_every_parameter_and_leaves_the_model_alone(trained):
    model, _ = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clone = randomized_copy(model, seed=1)
    for key, value in clone.state_dict().items():
        assert not torch.equal(value, before[key]) or value.numel() == 0 or key.endswith("bias"), key
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    again = randomized_copy(model, seed=1)
    assert all(
        torch.equal(a, b)
        for a, b in zip(clone.state_dict().values(), again.state_dict().values(), strict=True)
    )


def test_grad_cam_is_skipped_without_conv_layers_and_vectors_work():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    result = attribute_all(mlp, torch.randn(4), methods=["saliency", "grad_cam", "occlusion"])
    assert "image" in result["methods"]["grad_cam"]["skipped"]
    assert result["methods"]["saliency"]["map"].shape == (4,)
    assert result["methods"]["occlusion"]["map"].shape == (4,)


def test_frame_sequences_are_skipped_with_the_reason(tmp_path):
    clip_net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 1 * 6 * 6, 2)).eval()
    clip_net.input_shape = (3, 1, 6, 6)  # (T, C, H, W), as a built video network says
    index = attribute_all(clip_net, torch.randn(3, 1, 6, 6), out_dir=tmp_path)
    reasons = [item["skipped"] for item in index["methods"].values()]
    assert len(reasons) == 4 and all("image (C, H, W)" in r and "[3, 1, 6, 6]" in r for r in reasons)


def test_bad_arguments_are_one_clear_error(trained):
    model, x = trained
    with pytest.raises(ConfigError, match="no layer named 'conv9'"):
        attribute_all(model, x, layer="conv9", methods=["grad_cam"])
    with pytest.raises(ConfigError, match="target must be a class index from 0 to 1"):
        attribute_all(model, x, target=5, methods=["saliency"])
    with pytest.raises(ConfigError, match="unknown attribution method 'lime'"):
        attribute_all(model, x, methods=["lime"])
    with pytest.raises(DataError, match="NaN"):
        attribute_all(model, torch.full_like(x, float("nan")), methods=["saliency"])


def test_rank_correlation_edges():
    ramp = np.arange(16.0).reshape(4, 4)
    assert rank_correlation(ramp, ramp * 3) == pytest.approx(1.0)
    assert rank_correlation(np.zeros(4), np.zeros(4)) == 1.0
    assert rank_correlation(np.zeros(4), np.arange(4.0)) == 0.0
