"""Small stand-ins for layerlab.nn and layerlab.data, swapped into layerlab.train.adapters by tests."""

from __future__ import annotations

import math
from collections import OrderedDict
from types import SimpleNamespace

import pytest
import torch

from layerlab.train import adapters


def spiral(n_per_class: int = 40, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """CS231n's spiral, small."""
    g = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for c in range(classes):
        r = torch.linspace(0.0, 1.0, n_per_class)
        t = torch.linspace(c * 4.0, (c + 1) * 4.0, n_per_class) + torch.randn(n_per_class, generator=g) * 0.2
        xs.append(torch.stack([r * torch.sin(t), r * torch.cos(t)], 1))
        ys.append(torch.full((n_per_class,), c))
    x, y = torch.cat(xs), torch.cat(ys)
    perm = torch.randperm(len(x), generator=g)
    return x[perm], y[perm]


class FakePreprocessing:
    def __init__(self, mean=0.0):
        self.mean = mean

    def to_dict(self):
        return {"kind": "fake", "mean": self.mean}


def fake_prepare(cfg, *, seed, cache_dir=None):
    n = cfg.points_per_class or 40
    x, y = spiral(n, cfg.classes or 3, seed)
    a, b = int(len(x) * 0.7), int(len(x) * 0.85)
    if cfg.split.val == 0:
        b = a
    return SimpleNamespace(
        train_x=x[:a],
        train_y=y[:a],
        val_x=x[a:b],
        val_y=y[a:b],
        test_x=x[b:],
        test_y=y[b:],
        classes=[f"c{i}" for i in range(cfg.classes or 3)],
        input_shape=(2,),
        preprocessing=FakePreprocessing(),
        report={"skipped": []},
    )


def build(spec: dict) -> torch.nn.Module:
    layers = OrderedDict()
    width = spec["input"]
    for i, h in enumerate(spec["hidden"]):
        layers[f"fc{i + 1}"] = torch.nn.Linear(width, h)
        layers[f"relu{i + 1}"] = torch.nn.ReLU()
        if spec.get("dropout"):
            layers[f"drop{i + 1}"] = torch.nn.Dropout(spec["dropout"])
        width = h
    layers["out"] = torch.nn.Linear(width, spec["classes"])
    return torch.nn.Sequential(layers)


def fake_network(model_cfg, *, input_shape, num_classes):
    options = model_cfg.options
    spec = {
        "input": int(math.prod(input_shape)),
        "hidden": list(options.get("hidden", [32])),
        "dropout": options.get("dropout", 0.0),
        "classes": num_classes,
    }
    return spec, {"rows": []}, build(spec)


def fake_eval_data(source, preprocessing, *, cache_dir=None):
    x, y = spiral(20, 3, seed=123)
    return x, y, ["c0", "c1", "c2"]


@pytest.fixture
def standins(monkeypatch):
    """Replace the nn/data doors of the trainer with the stand-ins above."""
    monkeypatch.setattr(adapters, "prepare_data", fake_prepare)
    monkeypatch.setattr(adapters, "network_from_config", fake_network)
    monkeypatch.setattr(adapters, "network_from_dict", build)
    monkeypatch.setattr(adapters, "make_augmenter", lambda cfg: None)
    monkeypatch.setattr(adapters, "load_evaluation_data", fake_eval_data)
    torch.set_num_threads(1)
