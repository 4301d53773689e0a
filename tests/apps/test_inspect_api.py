"""The inspect endpoints: a small convnet really trained on the digits, inspected through the API."""

from __future__ import annotations

import io
import re
import shutil

import pytest
import torch
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from layerlab.apps.runs import inspect
from layerlab.apps.runs.execution import run_execute
from layerlab.apps.runs.services import run_create

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG = {
    "data": {"source": "digits", "split": {"method": "random", "val": 0.1, "test": 0.2}},
    "model": {"preset": "lenet5", "options": {"channels": [4, 8]}},
    "train": {"epochs": 1, "batch_size": 64, "num_threads": 1, "lr": 0.01, "optimizer": "adam"},
}


@pytest.fixture
def digits_run(people):
    torch.set_num_threads(1)
    run = run_create(project=people["project"], user=people["owner"], config=CONFIG)
    assert run_execute(run_id=run.id) == "succeeded"
    return run


def png_bytes(size: int = 8) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("L", (size, size), 0)
    ImageDraw.Draw(image).line((1, 1, size - 2, size - 2), fill=255)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_test_example_is_inspected_once_and_its_images_are_served(digits_run, people, client_for):
    api = client_for(people["viewer"])
    url = f"/api/runs/{digits_run.id}/inspect/"
    response = api.get(url, {"example": 3})
    assert response.status_code == 200, response.content
    index = response.json()
    assert index["cached"] is False and index["input"]["name"].startswith("test example 3")
    assert "dir" not in index and "/" not in (index["checkpoint"] or "")  # no server paths
    grids = [layer["image"] for layer in index["layers"] if layer.get("image")]
    assert grids and set(grids) <= set(index["files"])
    assert index["files"][grids[0]] == f"/api/runs/{digits_run.id}/inspect/{index['key']}/{grids[0]}/"
    methods = index["attributions"]["methods"]
    assert {m["method"] for m in methods} >= {"saliency", "integrated_gradients", "grad_cam", "occlusion"}
    assert all(-1 <= m["sanity"] <= 1 for m in methods if "sanity" in m)
    image = api.get(index["files"][grids[0]])
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content)[:4] == b"\x89PNG"
    # Published to the lab's storage (another root than the working directory in these tests).
    assert default_storage.exists(f"runs/{digits_run.id}/inspect/{index['key']}/{grids[0]}")
    again = api.get(url, {"example": 3}).json()
    assert again["cached"] is True and again["key"] == index["key"]
    # Gone from this machine's working directory: fetched back from the storage.
    shutil.rmtree(inspect.inspect_cache_dir(digits_run))
    assert api.get(index["files"][grids[0]]).status_code == 200
    page = api.get(url + "examples/").json()
    assert page["total"] > 300 and page["items"][0]["image"].startswith("data:image/png")


def test_an_upload_is_inspected_and_bad_inputs_are_one_line_400(digits_run, people, client_for, monkeypatch):
    api = client_for(people["viewer"])
    url = f"/api/runs/{digits_run.id}/inspect/"
    upload = SimpleUploadedFile("seven.png", png_bytes(), content_type="image/png")
    response = api.post(url, {"file": upload, "layer": "conv1", "channel": 2}, format="multipart")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["input"]["name"] == "seven.png" and body["layer"] == "conv1" and body["channel"] == 2
    bad = [
        api.post(url, {"file": SimpleUploadedFile("x.png", b"not an image")}, format="multipart"),
        api.get(url, {"example": 100000}),
        api.get(url, {"example": -1}),
        api.get(url, {"example": "nan"}),
        api.get(url, {"example": 0, "layer": "conv9"}),
        api.get(url, {"example": 0, "channel": 99999}),
        api.get(url, {"example": 0, "surprise": 1}),
        api.get(url),
    ]
    for response in bad:
        assert response.status_code == 400, response.content
        assert "\n" not in response.json()["detail"]
    assert "conv9" in bad[4].json()["detail"]
    assert api.get(url + "0123456789abcdef/nothing.png/").status_code == 404
    # Uploads are many: a run keeps its newest inspections, here and in the storage.
    monkeypatch.setattr(inspect, "MAX_ENTRIES", 2)
    for example in (0, 1, 2):
        assert api.get(url, {"example": example}).status_code == 200
    kept = {p.name for p in inspect.inspect_cache_dir(digits_run).iterdir() if inspect.KEY.match(p.name)}
    assert len(kept) == 2 and body["key"] not in kept
    assert not default_storage.exists(f"runs/{digits_run.id}/inspect/{body['key']}/index.json")


def test_a_network_over_vectors_is_inspected_without_grad_cam(people, client_for):
    torch.set_num_threads(1)
    config = {"model": {"preset": "mlp"}, "train": {"epochs": 2, "num_threads": 1}}  # the spiral
    run = run_create(project=people["project"], user=people["owner"], config=config)
    assert run_execute(run_id=run.id) == "succeeded"
    api = client_for(people["viewer"])
    index = api.get(f"/api/runs/{run.id}/inspect/", {"example": 0})
    assert index.status_code == 200, index.content
    methods = {m["method"]: m for m in index.json()["attributions"]["methods"]}
    assert "skipped" in methods["grad_cam"] and len(methods["saliency"]["values"]) == 2
    upload = SimpleUploadedFile("seven.png", png_bytes(), content_type="image/png")
    refused = api.post(f"/api/runs/{run.id}/inspect/", {"file": upload}, format="multipart")
    assert refused.status_code == 400 and "arrays" in refused.json()["detail"]


def test_runs_the_user_may_not_see_are_404(digits_run, people, client_for):
    api = client_for(people["viewer"])
    index = api.get(f"/api/runs/{digits_run.id}/inspect/", {"example": 0}).json()
    image = next(iter(index["files"].values()))
    stranger = client_for(people["stranger"])
    upload = SimpleUploadedFile("seven.png", png_bytes(), content_type="image/png")
    assert stranger.get(f"/api/runs/{digits_run.id}/inspect/", {"example": 0}).status_code == 404
    assert stranger.post(f"/api/runs/{digits_run.id}/inspect/", {"file": upload}).status_code == 404
    assert stranger.get(f"/api/runs/{digits_run.id}/inspect/examples/").status_code == 404
    assert stranger.get(image).status_code == 404
    assert client_for(None).get(image).status_code in (401, 403)


def test_session_uploads_need_the_csrf_token_and_large_networks_are_refused(
    digits_run, people, client_for, monkeypatch
):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(people["viewer"])
    url = f"/api/runs/{digits_run.id}/inspect/"
    upload = SimpleUploadedFile("seven.png", png_bytes(), content_type="image/png")
    assert browser.post(url, {"file": upload}).status_code == 403  # no CSRF token
    # As learned.js sends it: the page's token in X-CSRFToken, beside the session cookie.
    tab = browser.get(f"/runs/{digits_run.id}/learned/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', tab.content.decode()).group(1)
    upload.seek(0)
    answer = browser.post(url, {"file": upload, "layer": "conv2"}, HTTP_X_CSRFTOKEN=token)
    assert answer.status_code == 200, answer.content
    assert answer.json()["layer"] == "conv2"
    api = client_for(people["viewer"])
    monkeypatch.setattr(inspect, "WAIT_SECONDS", 0.01)
    with inspect._computing:  # another request's inspection holds the turn: told to retry, not kept waiting
        busy = api.get(url, {"example": 1})
    assert busy.status_code == 400 and "try again" in busy.json()["detail"]
    assert api.get(url, {"example": 0}).json()["cached"] is False
    monkeypatch.setattr(inspect, "MAX_MACS", 10)  # a network too costly to inspect in a request:
    assert api.get(url, {"example": 0}).json()["cached"] is True  # what was cached is still shown
    response = api.get(url, {"example": 5})
    assert response.status_code == 400
    assert "layerlab inspect <run directory>" in response.json()["detail"]
