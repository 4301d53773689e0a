"""Decompression limits of uploads and predict: zip, npz and image bombs refused before they inflate."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from layerlab.apps.datasets.models import Dataset
from layerlab.apps.datasets.uploads import zip_member_copy
from layerlab.core.errors import DataError

pytestmark = pytest.mark.django_db


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload(api, project, filename, content):
    return api.post(
        "/api/datasets/upload/",
        {"project": project.id, "name": "bomb", "file": SimpleUploadedFile(filename, content)},
        format="multipart",
    )


def nothing_kept(lab_home) -> bool:
    return not Dataset.objects.exists() and not any(
        p.is_file() for p in lab_home.rglob("*") if "login" not in str(p)
    )


def test_a_zip_declaring_more_than_the_uncompressed_limit_is_refused_unopened(
    people, client_for, settings, lab_home
):
    settings.LAYERLAB_MAX_UPLOAD_UNCOMPRESSED_BYTES = 100_000
    content = zipped({"a/zeros.png": bytes(300_000), "b/1.png": png(4, 4)})  # a few hundred bytes
    response = upload(client_for(people["editor"]), people["project"], "z.zip", content)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "LAYERLAB_MAX_UPLOAD_UNCOMPRESSED_MB" in detail and "300," in detail
    assert str(lab_home) not in detail and nothing_kept(lab_home)


def test_images_declaring_more_pixels_than_the_limit_are_refused_before_unpacking(
    people, client_for, settings, lab_home
):
    settings.LAYERLAB_MAX_IMAGE_PIXELS = 1_000_000
    content = zipped({"a/big.png": png(2000, 2000), "b/1.png": png(4, 4)})
    assert len(content) < 50_000  # the bomb is small: 4 megapixels of black
    response = upload(client_for(people["editor"]), people["project"], "z.zip", content)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "2000x2000" in detail and "LAYERLAB_MAX_IMAGE_PIXELS" in detail
    assert nothing_kept(lab_home)


def test_an_npz_whose_arrays_are_above_the_array_limit_is_refused(people, client_for, settings, lab_home):
    settings.LAYERLAB_MAX_ARRAY_BYTES = 1_000_000
    buffer = io.BytesIO()
    np.savez_compressed(buffer, X=np.zeros((1000, 1000), dtype=np.float32), y=np.zeros(1000, dtype=np.int64))
    response = upload(client_for(people["editor"]), people["project"], "a.npz", buffer.getvalue())
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "[1000, 1000]" in detail and "LAYERLAB_MAX_ARRAY_MB" in detail and str(lab_home) not in detail
    assert nothing_kept(lab_home)


def test_unpacking_counts_what_is_written_whatever_the_headers_say(tmp_path):
    source = tmp_path / "z.zip"
    source.write_bytes(zipped({"a/x.png": bytes(10_000)}))
    with zipfile.ZipFile(source) as archive, pytest.raises(DataError, match="more than its headers declare"):
        zip_member_copy(archive, archive.infolist()[0], tmp_path / "x.png", budget=5_000)


def test_predict_refuses_an_image_above_the_pixel_limit_before_decoding(people, client_for, settings):
    from layerlab.apps.runs.services import run_create

    settings.LAYERLAB_MAX_IMAGE_PIXELS = 1_000_000
    run = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}})
    response = client_for(people["viewer"]).post(
        f"/api/runs/{run.id}/predict/",
        {"files": [SimpleUploadedFile("big.png", png(2000, 2000))]},
        format="multipart",
    )
    assert response.status_code == 400
    assert "big.png" in response.json()["detail"] and "LAYERLAB_MAX_IMAGE_PIXELS" in response.json()["detail"]


def test_predict_errors_never_show_the_temporary_folder(people, client_for, monkeypatch):
    from layerlab.apps.runs import predict
    from layerlab.apps.runs.services import run_create
    from layerlab.train import adapters

    run = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}})
    monkeypatch.setattr(predict, "trained_model", lambda run: type("T", (), {"preprocessing": {}})())

    def fail(preprocessing, paths, names=None):
        raise OSError(f"cannot identify image file '{paths[0]}'")

    monkeypatch.setattr(adapters, "load_inputs", fail)
    response = client_for(people["viewer"]).post(
        f"/api/runs/{run.id}/predict/",
        {"files": [SimpleUploadedFile("cat.png", png(8, 8))]},
        format="multipart",
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "cat.png" in detail and "layerlab-predict" not in detail and "/tmp" not in detail


def test_predict_with_a_corrupt_checkpoint_names_the_run_not_its_path(people, client_for, lab_home):
    from pathlib import Path

    from layerlab.apps.runs.services import run_create

    run = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}})
    checkpoint = Path(run.run_dir) / "checkpoints" / "best.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"not a checkpoint")
    response = client_for(people["viewer"]).post(
        f"/api/runs/{run.id}/predict/", {"inputs": [[0, 0]]}, format="json"
    )
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert f"run {run.id}" in detail and str(lab_home) not in detail
