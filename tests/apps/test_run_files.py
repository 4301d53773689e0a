"""A run's files in Django's storage: published by the worker, read back without the local run directory."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from layerlab.apps.datasets.models import Dataset
from layerlab.apps.datasets.uploads import dataset_upload, upload_restore
from layerlab.apps.runs import execution, predict
from layerlab.apps.runs.execution import run_execute
from layerlab.apps.runs.files import run_dir_restore, run_file_local, run_file_publish, run_working_dir
from layerlab.apps.runs.models import Checkpoint, MetricPoint, Run
from layerlab.apps.runs.services import run_create, run_export, run_finetune, run_resume
from layerlab.core.errors import ConfigError, DataError
from layerlab.server.settings import storage_config
from layerlab.train.callbacks import Callback

pytestmark = pytest.mark.django_db(transaction=True)

TINY = {"model": {"preset": "mlp"}, "train": {"epochs": 2, "num_threads": 1, "checkpoint_every": 1}}


@pytest.fixture
def memory_storage(settings, lab_home):
    """An object-store stand-in: nothing stored is a file under LAYERLAB_HOME."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    torch.set_num_threads(1)
    predict._cache.clear()
    return default_storage


@pytest.fixture
def home_storage(settings, lab_home):
    """The default setup: a FileSystemStorage rooted at LAYERLAB_HOME."""
    settings.STORAGES = {**settings.STORAGES, "default": storage_config("", lab_home)}
    torch.set_num_threads(1)
    return default_storage


def trained_run(people, config=TINY) -> Run:
    run = run_create(project=people["project"], user=people["owner"], config=config)
    assert run_execute(run_id=run.id) == "succeeded", Run.objects.get(id=run.id).error
    return Run.objects.get(id=run.id)


def test_a_worker_publishes_checkpoints_and_run_files(memory_storage, people):
    run = trained_run(people)
    names = set(memory_storage.listdir(f"runs/{run.id}/checkpoints")[1])
    assert {"best.ckpt", "last.ckpt", "epoch-0001.ckpt", "epoch-0002.ckpt"} <= names
    files = set(memory_storage.listdir(f"runs/{run.id}")[1])
    assert {"summary.json", "metrics.jsonl", "config.yaml", "network.json", "preprocessing.json"} <= files
    # each recorded checkpoint is stored, with the bytes the engine wrote
    for checkpoint in run.checkpoints.all():
        relative = Path(checkpoint.path).relative_to(run_working_dir(run)).as_posix()
        with memory_storage.open(f"runs/{run.id}/{relative}") as stored:
            assert stored.read() == Path(checkpoint.path).read_bytes()


def test_predict_download_and_export_work_from_storage_alone(memory_storage, people, client_for, lab_home):
    run = trained_run(people)
    checkpoint = run.checkpoints.get(path__endswith="best.ckpt")
    expected = Path(checkpoint.path).read_bytes()
    shutil.rmtree(run_working_dir(run))  # another machine: no local run directory

    api = client_for(people["viewer"])
    response = api.post(f"/api/runs/{run.id}/predict/", {"inputs": [[0.1, 0.2]]}, format="json")
    assert response.status_code == 200, response.content
    assert (lab_home / "cache" / "runs" / str(run.id) / "checkpoints" / "best.ckpt").is_file()

    url = f"/api/runs/{run.id}/checkpoints/{checkpoint.id}/"
    download = api.get(url)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == expected
    assert api.get(url, HTTP_ACCEPT="application/octet-stream").status_code == 200
    assert client_for(people["stranger"]).get(url).status_code == 404
    assert client_for(None).get(url).status_code == 401
    other = Checkpoint.objects.create(run=trained_run(people), epoch=1, path="/elsewhere/x.ckpt")
    assert api.get(f"/api/runs/{run.id}/checkpoints/{other.id}/").status_code == 404

    web = Client()
    web.force_login(people["viewer"])
    page = web.get(f"/runs/{run.id}/checkpoints/{checkpoint.id}/")
    assert page.status_code == 200 and b"".join(page.streaming_content) == expected
    web.force_login(people["stranger"])
    assert web.get(f"/runs/{run.id}/checkpoints/{checkpoint.id}/").status_code == 404

    path = run_export(run=run, fmt="safetensors")
    assert path.is_file() and memory_storage.exists(f"runs/{run.id}/export/model.safetensors")


def test_the_dashboards_onnx_download_is_the_whole_model(memory_storage, people, tmp_path):
    import json

    import onnx
    import onnxruntime

    run = trained_run(people)
    web = Client()
    web.force_login(people["owner"])
    response = web.post(f"/runs/{run.id}/export/", {"format": "onnx"})
    assert response.status_code == 200, response.content
    assert response["Content-Disposition"].endswith(f'filename="run{run.id}.onnx"')
    alone = tmp_path / "model.onnx"  # an empty folder: no .onnx.data beside it
    alone.write_bytes(b"".join(response.streaming_content))
    session = onnxruntime.InferenceSession(str(alone), providers=["CPUExecutionProvider"])
    assert session.run(None, {session.get_inputs()[0].name: np.zeros((1, 2), np.float32)})[0].shape[0] == 1
    props = {p.key: p.value for p in onnx.load(str(alone)).metadata_props}
    assert json.loads(props["classes"]) and "mean" in json.loads(props["preprocessing"])
    assert memory_storage.listdir(f"runs/{run.id}/export")[1] == ["model.onnx"]


def test_a_listed_checkpoint_whose_file_is_gone_is_404(memory_storage, people, client_for):
    run = trained_run(people)
    checkpoint = run.checkpoints.get(path__endswith="epoch-0001.ckpt")
    Path(checkpoint.path).unlink()
    memory_storage.delete(f"runs/{run.id}/checkpoints/epoch-0001.ckpt")
    response = client_for(people["viewer"]).get(f"/api/runs/{run.id}/checkpoints/{checkpoint.id}/")
    assert response.status_code == 404 and "gone" in response.json()["detail"]


class FailAt(Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        if epoch == self.epoch:
            raise RuntimeError("worker lost")


def test_resume_on_a_machine_without_the_run_directory(memory_storage, people, monkeypatch):
    engine = execution.train_experiment
    calls = []

    def spy(cfg, run_dir, **kwargs):
        calls.append(kwargs["resume"])
        if len(calls) == 1:  # the first execution dies in epoch 2, after epoch 1's checkpoint
            kwargs["callbacks"] = [*kwargs["callbacks"], FailAt(2)]
        return engine(cfg, run_dir, **kwargs)

    monkeypatch.setattr(execution, "train_experiment", spy)
    config = {**TINY, "train": {**TINY["train"], "epochs": 3}}
    run = run_create(project=people["project"], user=people["owner"], config=config)
    assert run_execute(run_id=run.id) == "failed"
    shutil.rmtree(run_working_dir(run))
    run_resume(run=Run.objects.get(id=run.id))
    assert run_execute(run_id=run.id) == "succeeded", Run.objects.get(id=run.id).error
    assert calls == [False, True]  # the second execution resumed from the fetched checkpoint
    run = Run.objects.get(id=run.id)
    assert run.epoch == 3
    assert MetricPoint.objects.filter(run=run, name="train_loss").count() == 3
    assert memory_storage.exists(f"runs/{run.id}/checkpoints/epoch-0003.ckpt")


class KilledAt(Callback):
    """Ends the execution like SIGKILL: not an Exception, so the worker publishes and records nothing more."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        if epoch == self.epoch:
            raise SystemExit("killed")


def test_a_run_killed_on_one_machine_resumes_on_another_with_every_epoch(
    memory_storage, people, monkeypatch, settings, lab_home
):
    from datetime import timedelta

    from django.utils import timezone

    from layerlab.apps.runs.recovery import runs_recover_orphans

    engine = execution.train_experiment
    calls = []

    def spy(cfg, run_dir, **kwargs):
        calls.append(kwargs["resume"])
        if len(calls) == 1:  # machine A dies in epoch 3, after epoch 2's checkpoint
            kwargs["callbacks"] = [*kwargs["callbacks"], KilledAt(3)]
        return engine(cfg, run_dir, **kwargs)

    monkeypatch.setattr(execution, "train_experiment", spy)
    settings.LAYERLAB_WORKER_NAME = "host-a"
    config = {**TINY, "train": {**TINY["train"], "epochs": 4}}
    run = run_create(project=people["project"], user=people["owner"], config=config)
    with pytest.raises(SystemExit):
        run_execute(run_id=run.id)
    assert Run.objects.get(id=run.id).status == "running"  # as a SIGKILL leaves it
    # Machine B: its own working directories (none of the run's files), the same storage.
    settings.LAYERLAB_WORKER_NAME = "host-b"
    settings.LAYERLAB_RUNS_DIR = lab_home / "machine-b" / "runs"
    settings.LAYERLAB_CACHE_DIR = lab_home / "machine-b" / "cache"
    Run.objects.filter(id=run.id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert runs_recover_orphans() == [run.id]
    assert run_execute(run_id=run.id) == "succeeded", Run.objects.get(id=run.id).error
    assert calls == [False, True]
    run = Run.objects.get(id=run.id)
    assert run.worker.startswith("host-b:") and run.attempts == 2
    with memory_storage.open(f"runs/{run.id}/metrics.jsonl") as stored:
        epochs = [json.loads(line)["epoch"] for line in stored.read().splitlines()]
    assert epochs == [1, 2, 3, 4]  # epochs 1-2 of machine A came back through the storage
    relatives = [c.path.rpartition(f"/runs/{run.id}/")[2] for c in run.checkpoints.all()]
    assert len(relatives) == len(set(relatives))  # best/last listed once, not once per machine
    assert all(
        Path(c.path).is_relative_to(settings.LAYERLAB_RUNS_DIR) for c in run.checkpoints.filter(epoch__gte=3)
    )


def test_stored_numbered_checkpoints_are_pruned_like_the_working_copy(memory_storage, people):
    config = {**TINY, "train": {**TINY["train"], "epochs": 3, "keep_checkpoints": 1}}
    run = trained_run(people, config)
    names = set(memory_storage.listdir(f"runs/{run.id}/checkpoints")[1])
    assert names == {"best.ckpt", "last.ckpt", "epoch-0003.ckpt"}
    assert {p.name for p in (run_working_dir(run) / "checkpoints").iterdir()} == names


def test_restore_does_nothing_when_the_working_directory_has_checkpoints(memory_storage, people):
    run = trained_run(people)
    assert run_dir_restore(run=run) is True
    shutil.rmtree(run_working_dir(run))
    assert run_dir_restore(run=run) is True
    assert (run_working_dir(run) / "checkpoints" / "last.ckpt").is_file()


def test_finetune_from_a_parent_whose_directory_is_elsewhere(memory_storage, people):
    parent = trained_run(people)
    shutil.rmtree(run_working_dir(parent))
    child = run_finetune(run=parent, user=people["owner"], overrides=["train.epochs=1"])
    assert run_execute(run_id=child.id) == "succeeded", Run.objects.get(id=child.id).error


def test_run_file_local_refuses_paths_outside_the_run(memory_storage, people):
    run = trained_run(people)
    with pytest.raises(Exception, match="not a path inside"):
        run_file_local(run=run, relative="../../secret_key")


def test_default_storage_copies_nothing(home_storage, people, lab_home):
    assert isinstance(home_storage, FileSystemStorage)
    run = trained_run(people)
    best = run_working_dir(run) / "checkpoints" / "best.ckpt"
    assert run_file_publish(run=run, path=best) == f"runs/{run.id}/checkpoints/best.ckpt"
    assert home_storage.exists(f"runs/{run.id}/checkpoints/best.ckpt")
    assert [p for p in lab_home.rglob("best.ckpt")] == [best]  # one file: stored == working copy
    assert run_file_local(run=run, relative="checkpoints/best.ckpt") == best
    assert not (lab_home / "cache" / "runs").exists()

    buffer = io.BytesIO()
    np.savez(buffer, X=np.random.rand(20, 2).astype(np.float32), y=np.arange(20) % 2)
    upload = SimpleUploadedFile("a.npz", buffer.getvalue())
    dataset = dataset_upload(project=people["project"], user=people["owner"], name="a", upload=upload)
    path = Path(dataset.data["path"])
    assert path.is_relative_to(lab_home / "datasets") and path.is_file()
    assert not (lab_home / "cache" / "uploads").exists()


def image_zip() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, shade in (("dark", 20), ("light", 230)):
            for index in range(4):
                png = io.BytesIO()
                Image.new("L", (8, 8), color=shade + index).save(png, format="PNG")
                archive.writestr(f"photos/{label}/{index}.png", png.getvalue())
    return buffer.getvalue()


def test_uploads_go_through_the_storage_and_are_unpacked_locally(memory_storage, people, lab_home):
    upload = SimpleUploadedFile("pics.zip", image_zip())
    dataset = dataset_upload(project=people["project"], user=people["owner"], name="pics", upload=upload)
    folder = f"datasets/{people['project'].id}"
    (key,) = memory_storage.listdir(folder)[0]
    assert memory_storage.listdir(f"{folder}/{key}")[1] == ["upload.zip"]
    path = Path(dataset.data["path"])
    assert path.is_relative_to(lab_home / "cache" / "uploads") and {p.name for p in path.iterdir()} == {
        "dark",
        "light",
    }
    shutil.rmtree(lab_home / "cache" / "uploads")  # another machine: made again from the storage
    assert upload_restore(str(path)) == str(path)
    assert len(list(path.rglob("*.png"))) == 8


def stored_files(storage, prefix: str) -> list[str]:
    """Every file name under ``prefix`` (InMemoryStorage keeps empty folders, as object stores have none)."""
    folders, files = storage.listdir(prefix)
    names = [f"{prefix}/{name}" for name in files]
    for folder in folders:
        names += stored_files(storage, f"{prefix}/{folder}")
    return names


def test_a_refused_upload_leaves_nothing_in_storage_or_cache(memory_storage, people, lab_home):
    upload = SimpleUploadedFile("bad.npz", b"garbage")
    with pytest.raises(DataError):
        dataset_upload(project=people["project"], user=people["owner"], name="bad", upload=upload)
    assert not Dataset.objects.exists()
    assert stored_files(memory_storage, f"datasets/{people['project'].id}") == []
    assert not any(p.is_file() for p in (lab_home / "cache").rglob("*"))


def test_layerlab_storage_setting(tmp_path):
    default = storage_config("", tmp_path)
    assert default == {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path)},
    }
    assert (
        storage_config("storages.backends.s3.S3Storage", tmp_path)["BACKEND"]
        == "storages.backends.s3.S3Storage"
    )
    parsed = storage_config('{"BACKEND": "x.Y", "OPTIONS": {"bucket_name": "lab"}}', tmp_path)
    assert parsed == {"BACKEND": "x.Y", "OPTIONS": {"bucket_name": "lab"}}
    for bad in ("{not json", '{"OPTIONS": {}}'):
        with pytest.raises(ConfigError, match="LAYERLAB_STORAGE"):
            storage_config(bad, tmp_path)
