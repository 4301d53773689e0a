"""Networks with the decoder kinds (convtranspose2d, upsample, unflatten, reshape) export with parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerlab.inference.export import export_model
from layerlab.inference.trained import load_trained
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment

LAYERS = [
    {"kind": "conv2d", "out": 4, "kernel": 3, "stride": 2, "padding": 1},  # 8x8 -> 4x4
    {"kind": "relu"},
    {"kind": "flatten"},
    {"kind": "unflatten", "shape": [4, 4, 4]},
    {"kind": "convtranspose2d", "out": 3, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1},  # 8x8
    {"kind": "upsample", "scale": 1.5, "mode": "bilinear"},  # 12x12
    {"kind": "upsample", "size": [6, 6]},
    {"kind": "reshape", "shape": [-1, 6]},
    {"kind": "flatten"},
    {"kind": "linear", "out": "classes"},
]


@pytest.fixture(scope="module")
def decoder_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("decoder") / "run"
    cfg = experiment_from_mapping(
        {
            "data": {"source": "digits", "limit": 200},
            "model": {"layers": LAYERS},
            "train": {"epochs": 1, "batch_size": 32, "num_threads": 1},
        }
    )
    train_experiment(cfg, run_dir)
    return run_dir


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_decoder_kinds_export_and_match_eager_at_another_batch(decoder_run, tmp_path, fmt):
    torch.set_num_threads(1)
    out = export_model(decoder_run, fmt, tmp_path / f"model.{fmt}")  # raises unless it matches eager
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        eager = load_trained(decoder_run).model(x).numpy()
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    else:
        got = torch.jit.load(str(out))(x).detach().numpy()
    assert got.shape == (2, 10) and np.allclose(got, eager, atol=1e-4)
