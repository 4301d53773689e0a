"""Datasets (built-in, server path, uploads with limits) and networks (validated by the engine)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from layerlab.apps.datasets.models import Dataset
from layerlab.apps.datasets.services import dataset_inspect

pytestmark = pytest.mark.django_db


def png_bytes(shade: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (8, 8), color=shade).save(buffer, format="PNG")
    return buffer.getvalue()


def image_zip(wrapped: bool = True) -> bytes:
    buffer = io.BytesIO()
    prefix = "photos/" if wrapped else ""
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, shade in (("dark", 20), ("light", 230)):
            for i in range(6):
                archive.writestr(f"{prefix}{label}/{i}.png", png_bytes(shade + i))
    return buffer.getvalue()


def upload(api, project, name, filename, content, **extra):
    return api.post(
        "/api/datasets/upload/",
        {"project": project.id, "name": name, "file": SimpleUploadedFile(filename, content), **extra},
        format="multipart",
    )


def test_register_builtin_and_inspect(people, client_for):
    api = client_for(people["editor"])
    response = api.post(
        "/api/datasets/",
        {"project": people["project"].id, "name": "spiral", "data": {"source": "spiral"}},
        format="json",
    )
    assert response.status_code == 201 and response.json()["kind"] == "builtin"
    info = dataset_inspect(dataset_id=response.json()["id"])
    assert info["status"] == "ready" and info["classes"] and info["counts"]["train"]


def test_register_a_missing_server_path_is_400(people, client_for):
    from django.contrib.auth.models import User

    api = client_for(User.objects.create_superuser("root", password="root-Secret-pass-42"))
    response = api.post(
        "/api/datasets/",
        {"project": people["project"].id, "name": "x", "data": {"source": "imagefolder", "path": "/nope"}},
        format="json",
    )
    assert response.status_code == 400 and "does not exist" in response.json()["detail"]


def test_register_an_unknown_source_suggests_the_closest(people, client_for):
    api = client_for(people["editor"])
    response = api.post(
        "/api/datasets/",
        {"project": people["project"].id, "name": "x", "data": {"source": "spiral2"}},
        format="json",
    )
    assert response.status_code == 400 and "spiral" in response.json()["detail"]


@pytest.mark.parametrize("wrapped", [True, False])
def test_upload_a_zip_of_an_image_folder(people, client_for, wrapped):
    response = upload(
        client_for(people["editor"]),
        people["project"],
        "photos",
        "photos.zip",
        image_zip(wrapped),
        options='{"size": [8, 8], "channels": 1}',
    )
    assert response.status_code == 201, response.content
    dataset = Dataset.objects.get(id=response.json()["id"])
    assert dataset.data["source"] == "imagefolder"
    info = dataset_inspect(dataset_id=dataset.id)
    assert info["status"] == "ready", info
    assert sorted(info["classes"]) == ["dark", "light"]


def test_upload_npz_and_csv(people, client_for, tmp_path):
    api = client_for(people["editor"])
    buffer = io.BytesIO()
    np.savez(buffer, X=np.random.rand(40, 4).astype(np.float32), y=np.arange(40) % 2)
    assert upload(api, people["project"], "arrays", "a.npz", buffer.getvalue()).status_code == 201
    csv = "a,b,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(40))
    response = upload(api, people["project"], "table", "t.csv", csv.encode())
    assert response.status_code == 201
    assert dataset_inspect(dataset_id=response.json()["id"])["status"] == "ready"


@pytest.mark.parametrize(
    ("filename", "content", "words"),
    [
        ("notes.txt", b"hello", "not a .zip"),
        ("fake.zip", b"not a zip at all", "not a readable zip"),
        ("bad.npz", b"garbage", "cannot read"),
        ("empty.zip", None, "no images"),
        ("evil.zip", "evil", "unsafe path"),
        ("named.zip", "named", "not an image"),
    ],
)
def test_bad_uploads_are_400_and_leave_nothing(people, client_for, lab_home, filename, content, words):
    members = {
        None: {"readme.txt": b"x"},
        "evil": {"../../escape/x.png": png_bytes(1)},
        # named like images, but one is not: refused at upload, not found out later by the worker
        "named": {"a/1.png": png_bytes(1), "b/2.png": b"this is text"},
    }
    if content in members:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in members[content].items():
                archive.writestr(name, data)
        content = buffer.getvalue()
    response = upload(client_for(people["editor"]), people["project"], "bad", filename, content)
    assert response.status_code == 400, response.content
    assert words in response.json()["detail"]
    assert not Dataset.objects.exists()
    assert not any(p.is_file() for p in (lab_home / "files").rglob("*"))


def test_upload_over_the_size_limit_is_400(people, client_for, settings):
    settings.LAYERLAB_UPLOAD_MAX_BYTES = 100
    response = upload(client_for(people["editor"]), people["project"], "big", "big.csv", b"a,b\n" * 100)
    assert response.status_code == 400 and "limit" in response.json()["detail"]


@pytest.mark.parametrize("url", ["/api/datasets/upload/", "predict"])
def test_a_body_over_the_upload_limit_is_refused_before_it_is_read(people, client_for, settings, url):
    """Judged on Content-Length: the body (here a small one that claims 1 GB) is never spooled to disk."""
    from layerlab.apps.runs.services import run_create

    settings.LAYERLAB_UPLOAD_MAX_BYTES = 1000
    if url == "predict":
        run = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}})
        url = f"/api/runs/{run.id}/predict/"
    body = {
        "project": people["project"].id,
        "name": "big",
        "file": SimpleUploadedFile("t.csv", b"a,b\n1,0\n"),
    }
    response = client_for(people["editor"]).post(url, body, format="multipart", CONTENT_LENGTH=str(2**30))
    assert response.status_code == 400, response.content
    assert "limit" in response.json()["detail"]
    assert not Dataset.objects.exists()


def test_viewers_cannot_upload(people, client_for):
    response = upload(client_for(people["viewer"]), people["project"], "v", "t.csv", b"a,b\n1,0\n")
    assert response.status_code == 403


SPEC = {
    "input": [1, 8, 8],
    "classes": 2,
    "layers": [
        {"kind": "conv2d", "out": 4, "kernel": 3, "padding": 1},
        {"kind": "flatten"},
        {"kind": "linear", "out": "classes"},
    ],
}


def test_network_save_returns_the_shape_table(people, client_for):
    response = client_for(people["editor"]).post(
        "/api/networks/", {"project": people["project"].id, "name": "conv", "spec": SPEC}, format="json"
    )
    assert response.status_code == 201, response.content
    summary = response.json()["summary"]
    assert summary["output_shape"] == [2] and len(summary["rows"]) == 3 and summary["total_params"] > 0


def test_impossible_network_is_400_naming_the_layer(people, client_for):
    bad = {
        **SPEC,
        "input": [1, 2, 2],
        "layers": [
            {"kind": "conv2d", "out": 4, "kernel": 5},
            {"kind": "flatten"},
            {"kind": "linear", "out": 2},
        ],
    }
    response = client_for(people["editor"]).post(
        "/api/networks/", {"project": people["project"].id, "name": "bad", "spec": bad}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "shape_error" and "conv2d" in body["detail"]


def test_unknown_layer_kind_is_400(people, client_for):
    bad = {"layers": [{"kind": "linaer", "out": 2}]}
    response = client_for(people["editor"]).post(
        "/api/networks/", {"project": people["project"].id, "name": "bad", "spec": bad}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"] == "spec_error"
    assert "linear" in response.json()["detail"]  # the closest kind is suggested


def test_run_from_saved_network_and_dataset(people, client_for):
    api = client_for(people["editor"])
    pid = people["project"].id
    spec = {"layers": [{"kind": "linear", "out": 16}, {"kind": "relu"}, {"kind": "linear", "out": "classes"}]}
    network = api.post(
        "/api/networks/", {"project": pid, "name": "mlp16", "spec": spec}, format="json"
    ).json()
    dataset = api.post(
        "/api/datasets/",
        {"project": pid, "name": "sp", "data": {"source": "spiral", "classes": 4}},
        format="json",
    ).json()
    response = api.post(
        "/api/runs/",
        {"project": pid, "network": network["id"], "dataset": dataset["id"], "overrides": ["train.epochs=1"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    config = response.json()["config"]
    assert (
        config["model"]["layers"] == spec["layers"]
        and config["data"]["classes"] == 4
        and config["train"]["epochs"] == 1
    )


def test_sample_grid_of_an_image_dataset(people, client_for):
    from PIL import Image

    api = client_for(people["viewer"])
    response = upload(
        client_for(people["editor"]),
        people["project"],
        "photos",
        "p.zip",
        image_zip(),
        options='{"size": [8, 8], "channels": 1}',
    )
    grid = api.get(f"/api/datasets/{response.json()['id']}/samples/", {"per_class": 3})
    assert grid.status_code == 200 and grid["Content-Type"] == "image/png"
    picture = Image.open(io.BytesIO(grid.content))
    assert picture.size == (3 * 10 * 2, 2 * 10 * 2)  # 3 per row, 2 classes, 8 px + 2 px border, x2


def test_sample_grid_of_vectors_is_400(people, client_for):
    dataset = Dataset.objects.create(
        project=people["project"], name="sp", kind="builtin", data={"source": "spiral"}
    )
    response = client_for(people["viewer"]).get(f"/api/datasets/{dataset.id}/samples/")
    assert response.status_code == 400 and "vectors" in response.json()["detail"]


def test_granted_folders_limit_server_paths(people, client_for, tmp_path):
    from django.contrib.auth.models import User

    from layerlab.apps.projects.services import project_data_root_grant

    allowed, other = tmp_path / "allowed", tmp_path / "other"
    for folder in (allowed / "a", other / "a"):
        folder.mkdir(parents=True)
    root = User.objects.create_superuser("root", password="root-Secret-pass-42")
    project_data_root_grant(project=people["project"], path=str(allowed), by=root)
    api = client_for(people["editor"])
    pid = people["project"].id

    def register(path, name):
        return api.post(
            "/api/datasets/",
            {"project": pid, "name": name, "data": {"source": "imagefolder", "path": str(path)}},
            format="json",
        )

    assert register(allowed, "ok").status_code == 201
    refused = register(other, "no")
    assert refused.status_code == 400 and "not inside a folder granted" in refused.json()["detail"]
    escape = register(allowed / ".." / "other", "sneaky")
    assert escape.status_code == 400
    run = api.post(
        "/api/runs/",
        {"project": pid, "config": {"data": {"source": "npz", "path": str(other / "x.npz")}}},
        format="json",
    )
    assert run.status_code == 400 and "not inside a folder granted" in run.json()["detail"]
