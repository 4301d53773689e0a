"""Which server files a user may have read: data paths, granted folders, init_from, spec files, messages."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from layerlab.apps.datasets.models import Dataset
from layerlab.apps.datasets.services import dataset_delete, dataset_inspect, dataset_register
from layerlab.apps.projects.services import project_create, project_data_root_grant, project_data_root_revoke
from layerlab.apps.runs import execution
from layerlab.apps.runs.models import Checkpoint, Run
from layerlab.apps.runs.services import run_create, run_finetune
from layerlab.core.errors import ConfigError

pytestmark = pytest.mark.django_db

SECRET = "DJANGO_SECRET_KEY=hush-hush-42"


@pytest.fixture
def root(db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("root", password="root-Secret-pass-42")


def png_bytes(shade: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (8, 8), color=shade).save(buffer, format="PNG")
    return buffer.getvalue()


def image_folder(path: Path) -> Path:
    for label, shade in (("dark", 20), ("light", 230)):
        (path / label).mkdir(parents=True, exist_ok=True)
        for i in range(4):
            (path / label / f"{i}.png").write_bytes(png_bytes(shade + i))
    return path


def csv_upload(api, project, name="table"):
    text = "a,b,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(40))
    return api.post(
        "/api/datasets/upload/",
        {"project": project.id, "name": name, "file": SimpleUploadedFile("t.csv", text.encode())},
        format="multipart",
    )


def register(api, project, data, name="d"):
    return api.post("/api/datasets/", {"project": project.id, "name": name, "data": data}, format="json")


# --- data.path: refused by default, the same words whether the file exists or not --------------------


def test_server_paths_are_refused_by_default_without_telling_what_exists(people, client_for, tmp_path):
    api = client_for(people["editor"])
    answers = [
        register(api, people["project"], {"source": "csv", "path": "/proc/self/environ"}, "env"),
        register(
            api, people["project"], {"source": "imagefolder", "path": str(image_folder(tmp_path / "i"))}
        ),
        register(api, people["project"], {"source": "csv", "path": "/no/such/file.csv"}, "missing"),
    ]
    assert {a.status_code for a in answers} == {400}
    details = {a.json()["detail"] for a in answers}
    assert len(details) == 1 and "not inside a folder granted" in details.pop()
    run = client_for(people["editor"]).post(
        "/api/runs/",
        {"project": people["project"].id, "config": {"data": {"source": "csv", "path": "/etc/passwd"}}},
        format="json",
    )
    assert run.status_code == 400 and "passwd" not in run.json()["detail"]
    assert not Dataset.objects.exists() and not Run.objects.exists()


def test_a_grant_is_per_project_and_checked_on_the_real_path(people, client_for, root, tmp_path):
    granted = image_folder(tmp_path / "granted")
    outside = image_folder(tmp_path / "outside")
    (granted / "link").symlink_to(outside, target_is_directory=True)
    project_data_root_grant(project=people["project"], path=str(granted), by=root)
    other = project_create(owner=people["editor"], name="mine")
    api = client_for(people["editor"])
    assert (
        register(api, people["project"], {"source": "imagefolder", "path": str(granted)}).status_code == 201
    )
    assert register(api, other, {"source": "imagefolder", "path": str(granted)}, "x").status_code == 400
    sneaky = register(api, people["project"], {"source": "imagefolder", "path": str(granted / "link")}, "s")
    assert sneaky.status_code == 400  # a link inside the folder to elsewhere is elsewhere


def test_only_superusers_grant_folders(people, tmp_path):
    from layerlab.apps.projects.services import ProjectError

    with pytest.raises(ProjectError):
        project_data_root_grant(project=people["project"], path=str(tmp_path), by=people["owner"])


def test_another_projects_upload_cache_is_not_readable(people, client_for):
    upload = csv_upload(client_for(people["owner"]), people["project"])
    path = Dataset.objects.get(id=upload.json()["id"]).data["path"]
    mine = project_create(owner=people["stranger"], name="mine")
    api = client_for(people["stranger"])
    assert register(api, mine, {"source": "csv", "path": path}).status_code == 400
    run = api.post(
        "/api/runs/", {"project": mine.id, "config": {"data": {"source": "csv", "path": path}}}, format="json"
    )
    assert run.status_code == 400
    # ... nor by naming the dataset: it is not one the stranger may see.
    named = api.post(
        "/api/runs/",
        {"project": mine.id, "config": {"data": {"dataset": upload.json()["id"]}}},
        format="json",
    )
    assert named.status_code == 400 and "not a dataset you may see" in named.json()["detail"]


def test_an_upload_is_named_by_dataset_and_shown_by_name(people, client_for, lab_home):
    api = client_for(people["editor"])
    upload = csv_upload(api, people["project"])
    assert upload.status_code == 201
    shown = api.get(f"/api/datasets/{upload.json()['id']}/").json()
    assert "path" not in shown["data"] and shown["data"]["dataset"] == "table"
    response = api.post(
        "/api/runs/",
        {"project": people["project"].id, "config": {"data": {"dataset": "table"}, "train": {"epochs": 1}}},
        format="json",
    )
    assert response.status_code == 201, response.content
    run = Run.objects.get(id=response.json()["id"])
    assert run.dataset_id == upload.json()["id"]
    assert str(lab_home) not in str(response.json()["config"])
    assert response.json()["config"]["data"]["dataset"] == "table"
    # The public form goes back in as it came out ("run again" from a copied config).
    again = api.post(
        "/api/runs/", {"project": people["project"].id, "config": response.json()["config"]}, format="json"
    )
    assert again.status_code == 201, again.content
    page = client_for(people["editor"])
    page.force_login(people["editor"])
    for url in (f"/datasets/{upload.json()['id']}/", f"/runs/{run.id}/", f"/compare/?runs={run.id}"):
        html = page.get(url).content.decode()
        assert "table" in html and str(lab_home) not in html, url


# --- the workers check again, and say nothing of the files --------------------------------------------


def test_the_worker_refuses_a_path_whose_grant_was_taken_back(people, root, tmp_path, monkeypatch):
    folder = tmp_path / "granted"
    folder.mkdir()
    np.savez(folder / "a.npz", X=np.zeros((10, 2), np.float32), y=np.arange(10) % 2)
    project_data_root_grant(project=people["project"], path=str(folder), by=root)
    run = run_create(
        project=people["project"],
        user=people["editor"],
        config={"data": {"source": "npz", "path": str(folder / "a.npz")}, "train": {"epochs": 1}},
    )
    project_data_root_revoke(project=people["project"], path=str(folder), by=root)
    called = []
    monkeypatch.setattr(execution, "train_experiment", lambda *a, **k: called.append(1))
    assert execution.run_execute(run_id=run.id) == "failed"
    run.refresh_from_db()
    assert not called and "not inside a folder granted" in run.error and str(tmp_path) not in run.error


def test_importer_errors_never_echo_the_file(people, root, tmp_path):
    secret = tmp_path / "environ"
    secret.write_text(f"{SECRET},x\nA=1,2\n")
    dataset = dataset_register(
        project=people["project"], user=root, name="env", data={"source": "csv", "path": str(secret)}
    )
    info = dataset_inspect(dataset_id=dataset.id)
    assert info["status"] == "error" and "row" in info["error"]
    assert "hush" not in info["error"] and str(tmp_path) not in info["error"]
    assert "dataset 'env'" in info["error"]


def test_a_dangling_link_fails_the_dataset_and_its_samples_cleanly(people, client_for, root, tmp_path):
    folder = image_folder(tmp_path / "photos")
    (folder / "dark" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    dataset = dataset_register(
        project=people["project"],
        user=root,
        name="photos",
        data={"source": "imagefolder", "path": str(folder), "size": [8, 8], "channels": 1},
    )
    info = dataset_inspect(dataset_id=dataset.id)
    assert info["status"] == "error" and "broken link" in info["error"] and str(tmp_path) not in info["error"]
    samples = client_for(people["viewer"]).get(f"/api/datasets/{dataset.id}/samples/")
    assert samples.status_code == 400 and "broken link" in samples.json()["detail"]


# --- model.init_from and model.preset: runs by reference, never server files ---------------------------


@pytest.fixture
def trained(people, lab_home):
    """A succeeded run of the shared project with a best checkpoint in its run directory."""
    run = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}})
    best = Path(run.run_dir) / "checkpoints" / "best.ckpt"
    best.parent.mkdir(parents=True)
    best.write_bytes(b"weights")
    Checkpoint.objects.create(run=run, epoch=1, path=str(best))
    Run.objects.filter(id=run.id).update(status=Run.Status.SUCCEEDED)
    run.refresh_from_db()
    return run


def test_init_from_of_a_run_you_cannot_see_reads_like_a_missing_one(people, trained):
    mine = project_create(owner=people["stranger"], name="mine")
    answers = []
    for value in (f"run:{trained.id}", "run:999999", trained.run_dir, str(Path(trained.run_dir) / "nope")):
        with pytest.raises(ConfigError) as caught:
            run_create(project=mine, user=people["stranger"], config={"model": {"init_from": value}})
        answers.append(caught.value.message.replace(str(trained.id), "N").replace("999999", "N"))
    assert len(set(answers[:2])) == 1 and len(set(answers[2:])) == 1
    assert all(trained.run_dir not in a for a in answers)


def test_init_from_a_visible_run_is_resolved_on_the_worker(people, trained, monkeypatch):
    child = run_create(
        project=people["project"], user=people["viewer"], config={"model": {"init_from": f"run:{trained.id}"}}
    )
    assert child.config["model"]["init_from"] == f"run:{trained.id}"
    seen = []
    monkeypatch.setattr(
        execution, "train_experiment", lambda cfg, *a, **k: seen.append(cfg.model.init_from) or {"epochs": 1}
    )
    execution.run_execute(run_id=child.id)
    assert seen and Path(seen[0]).read_bytes() == b"weights"


def test_finetune_of_an_upload_run_keeps_its_dataset(people, client_for, trained):
    api = client_for(people["editor"])
    upload = csv_upload(api, people["project"])
    parent = run_create(
        project=people["project"],
        user=people["editor"],
        config={"train": {"epochs": 1}},
        dataset=Dataset.objects.get(id=upload.json()["id"]),
    )
    Run.objects.filter(id=parent.id).update(status=Run.Status.SUCCEEDED)
    parent.refresh_from_db()
    child = run_finetune(run=parent, user=people["editor"])
    assert child.dataset_id == parent.dataset_id and child.config["model"]["init_from"] == f"run:{parent.id}"


def test_a_spec_file_as_preset_is_refused_for_users(people, tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text("layers: [{kind: linear, out: classes}]\n")
    for value in (str(spec), str(tmp_path / "missing.yaml")):
        with pytest.raises(ConfigError, match="only administrators"):
            run_create(project=people["project"], user=people["editor"], config={"model": {"preset": value}})


# --- deleting a dataset deletes its files, unless they are still needed ---------------------------------


def test_deleting_an_upload_deletes_its_files(
    people, client_for, lab_home, django_capture_on_commit_callbacks
):
    api = client_for(people["editor"])
    dataset = Dataset.objects.get(id=csv_upload(api, people["project"]).json()["id"])
    dataset_inspect(dataset_id=dataset.id)
    stored = Path(dataset.data["path"])
    cache = lab_home / "cache"
    entries = {p.name for p in cache.iterdir() if p.is_dir() and p.name != "uploads"}
    assert stored.is_file() and entries
    with django_capture_on_commit_callbacks(execute=True):
        dataset_delete(dataset=dataset)
    assert not stored.exists() and not stored.parent.exists()
    assert not ({p.name for p in cache.iterdir() if p.is_dir()} & entries)


def test_an_upload_a_queued_run_reads_stays(people, client_for, django_capture_on_commit_callbacks):
    api = client_for(people["editor"])
    dataset = Dataset.objects.get(id=csv_upload(api, people["project"]).json()["id"])
    run_create(project=people["project"], user=people["editor"], config={}, dataset=dataset)
    with django_capture_on_commit_callbacks(execute=True):
        dataset_delete(dataset=dataset)
    assert os.path.isfile(dataset.data["path"])


def test_granted_folders_through_the_api_are_for_superusers(people, client_for, root, tmp_path):
    url = f"/api/projects/{people['project'].id}/data-roots/"
    assert client_for(people["owner"]).get(url).status_code == 403
    assert client_for(people["owner"]).post(url, {"path": str(tmp_path)}, format="json").status_code == 403
    assert client_for(people["stranger"]).get(url).status_code == 404
    api = client_for(root)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "..", target_is_directory=True)
    granted = api.post(url, {"path": str(link)}, format="json")
    assert granted.status_code == 200 and granted.json() == [
        {"path": str(tmp_path.parent.resolve()), "note": ""}
    ]
    assert api.delete(url, {"path": str(tmp_path.parent)}, format="json").json() == []


def test_the_admin_shows_granted_folders_to_superusers_only(people, root, client):
    from django.contrib.auth.models import Permission, User

    staff = User.objects.create_user("staff", password="staff-Secret-pass-42", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__endswith="_project"))
    client.force_login(staff)
    page = client.get(f"/admin/projects/project/{people['project'].id}/change/")
    assert page.status_code == 200 and "granted data folder" not in page.content.decode().lower()
    client.force_login(root)
    assert (
        "granted data folder"
        in client.get(f"/admin/projects/project/{people['project'].id}/change/").content.decode().lower()
    )


def test_a_rerun_of_a_fine_tune_recorded_with_a_path_names_the_parent(people, trained):
    from layerlab.apps.runs.services import run_rerun

    child = run_create(project=people["project"], user=people["owner"], config={}, parent=trained)
    child.config["model"]["init_from"] = trained.run_dir  # how fine-tunes were recorded before
    Run.objects.filter(id=child.id).update(config=child.config)
    child.refresh_from_db()
    again = run_rerun(run=child, user=people["editor"])
    assert again.config["model"]["init_from"] == f"run:{trained.id}"


def test_a_folder_granted_in_the_admin_is_stored_as_its_real_path(people, root, client, tmp_path):
    from layerlab.apps.projects.models import ProjectDataRoot

    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    client.force_login(root)
    project = people["project"]
    url = f"/admin/projects/project/{project.id}/change/"
    form = {
        "name": project.name, "description": project.description, "owner": project.owner_id,
        "shares-TOTAL_FORMS": "0", "shares-INITIAL_FORMS": "0",
        "members-TOTAL_FORMS": "0", "members-INITIAL_FORMS": "0",
        "data_roots-TOTAL_FORMS": "1", "data_roots-INITIAL_FORMS": "0",
        "data_roots-0-path": str(tmp_path / "alias"), "data_roots-0-note": "photos",
    }  # fmt: skip
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    root_row = ProjectDataRoot.objects.get(project=project)
    assert root_row.path == str((tmp_path / "real").resolve()) and root_row.granted_by == root
