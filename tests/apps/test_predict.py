"""Predict: a tiny run really trained by the engine, then class probabilities through the API."""

from __future__ import annotations

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile

from layerlab.apps.runs import predict
from layerlab.apps.runs.execution import run_execute
from layerlab.apps.runs.services import run_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def trained(people):
    torch.set_num_threads(1)
    run = run_create(
        project=people["project"],
        user=people["owner"],
        config={"model": {"preset": "mlp"}, "train": {"epochs": 2, "num_threads": 1}},
    )
    assert run_execute(run_id=run.id) == "succeeded"
    return run


def test_predict_arrays_gives_probabilities_and_caches_the_model(trained, people, client_for):
    api = client_for(people["viewer"])
    url = f"/api/runs/{trained.id}/predict/"
    response = api.post(url, {"inputs": [[0.1, 0.2], [-0.5, 0.3]], "top_k": 2}, format="json")
    assert response.status_code == 200, response.content
    predictions = response.json()["predictions"]
    assert len(predictions) == 2 and len(predictions[0]["top"]) == 2
    assert response.json()["engine"] == "onnxruntime"  # the serving engine, checked against eager
    assert abs(sum(predictions[0]["probabilities"]) - 1.0) < 1e-4
    cached = len(predict._cache)
    api.post(url, {"inputs": [[0.0, 0.0]]}, format="json")
    assert len(predict._cache) == cached


def test_predict_with_wrong_shapes_or_files_is_400(trained, people, client_for):
    api = client_for(people["viewer"])
    url = f"/api/runs/{trained.id}/predict/"
    assert api.post(url, {"inputs": [[1, 2, 3, 4, 5]]}, format="json").status_code == 400
    assert api.post(url, {}, format="json").status_code == 400
    not_image = SimpleUploadedFile("x.png", b"not an image")
    response = api.post(url, {"files": [not_image]}, format="multipart")
    assert response.status_code == 400, response.content


def test_predict_on_an_unfinished_run_is_400(people, client_for):
    run = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}})
    response = client_for(people["owner"]).post(
        f"/api/runs/{run.id}/predict/", {"inputs": [[0, 0]]}, format="json"
    )
    assert response.status_code == 400


def test_predict_says_when_it_falls_back_to_eager(trained, people, client_for, monkeypatch):
    from layerlab.core.errors import ExportError
    from layerlab.inference import onnx_engine

    def refuse(trained_model, out):
        raise ExportError("onnx export impossible (legacy: unsupported op)")

    monkeypatch.setattr(onnx_engine, "export_serving_onnx", refuse)
    predict._engines.clear()
    response = client_for(people["viewer"]).post(
        f"/api/runs/{trained.id}/predict/", {"inputs": [[0.1, 0.2]]}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["engine"] == "eager" and "onnx export impossible" in body["engine_reason"]
    assert len(body["predictions"][0]["top"]) == 3
