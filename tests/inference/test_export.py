"""Exports are whole models: one file each, carrying the class names and preprocessing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from layerlab.inference.export import EXTRA_FILE, export_model
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment


@pytest.fixture(scope="module")
def spiral_run(tmp_path_factory):
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("run")
    cfg = experiment_from_mapping(
        {"model": {"preset": "mlp", "options": {"hidden": [8]}}, "train": {"epochs": 1, "batch_size": 64}}
    )
    train_experiment(cfg, run_dir)
    return run_dir


def test_onnx_export_is_one_file_that_loads_alone_with_classes_and_preprocessing(spiral_run, tmp_path):
    import onnx
    import onnxruntime

    out = export_model(spiral_run, "onnx", tmp_path / "made" / "model.onnx")
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.onnx"]  # no model.onnx.data
    alone = tmp_path / "deployed"
    alone.mkdir()
    shutil.copy(out, alone / "m.onnx")  # renamed too: nothing may refer to the old name
    session = onnxruntime.InferenceSession(str(alone / "m.onnx"), providers=["CPUExecutionProvider"])
    x = np.zeros((3, 2), np.float32)
    assert session.run(None, {session.get_inputs()[0].name: x})[0].shape == (3, 3)

    props = {p.key: p.value for p in onnx.load(str(alone / "m.onnx")).metadata_props}
    meta = json.loads(props["layerlab"])
    assert json.loads(props["classes"]) == meta["classes"] and len(meta["classes"]) == 3
    assert meta["input_shape"] == [2]
    pre = json.loads(props["preprocessing"])
    assert pre["kind"] == "vector" and len(pre["mean"]) == 2 and len(pre["std"]) == 2


def test_torchscript_export_carries_layerlab_json(spiral_run, tmp_path):
    out = export_model(spiral_run, "torchscript", tmp_path / "model.pt")
    extra = {EXTRA_FILE: ""}
    loaded = torch.jit.load(str(out), _extra_files=extra)
    meta = json.loads(extra[EXTRA_FILE])
    assert len(meta["classes"]) == 3 and meta["preprocessing"]["kind"] == "vector"
    assert loaded(torch.zeros(1, 2)).shape == (1, 3)
