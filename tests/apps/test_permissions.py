"""The permission matrix: owner, group editor, group viewer, stranger, anonymous x every action.

Rules: what a user may not see answers 404 (never 403); anonymous answers 401; viewers read,
editors also create and edit, owners also share and delete.
"""

from __future__ import annotations

import pytest

from layerlab.apps.datasets.services import dataset_register
from layerlab.apps.journal.services import entry_create
from layerlab.apps.networks.services import network_create
from layerlab.apps.runs.services import run_create

pytestmark = pytest.mark.django_db

ROLES = ["owner", "editor", "viewer", "stranger", "anonymous"]
SPEC = {
    "input": [2],
    "classes": 3,
    "layers": [{"kind": "linear", "out": 8}, {"kind": "relu"}, {"kind": "linear", "out": "classes"}],
}
TINY = {"model": {"preset": "mlp"}, "train": {"epochs": 2}}


@pytest.fixture
def world(people):
    """One object of every resource inside the shared project."""
    owner, project = people["owner"], people["project"]
    objects = {
        "projects": project,
        "datasets": dataset_register(project=project, user=owner, name="spiral", data={"source": "spiral"}),
        "networks": network_create(project=project, user=owner, name="net", spec=SPEC),
        "runs": run_create(project=project, user=owner, config=TINY, name="first"),
    }
    objects["journal"] = entry_create(project=project, author=owner, title="note", body="text")
    return people, objects


def new_body(resource: str, project_id: int, n: int) -> dict:
    return {
        "projects": {"name": f"mine-{n}", "description": "x"},
        "datasets": {"project": project_id, "name": f"d{n}", "data": {"source": "digits"}},
        "networks": {"project": project_id, "name": f"n{n}", "spec": SPEC},
        "runs": {"project": project_id, "config": TINY},
        "journal": {"project": project_id, "title": f"t{n}", "body": "b"},
    }[resource]


def update_body(resource: str) -> dict:
    return {
        "projects": {"description": "edited"},
        "runs": {"name": "renamed"},
        "journal": {"body": "edited"},
    }.get(resource, {"name": "renamed"})


RESOURCES = ["projects", "datasets", "networks", "runs", "journal"]

# Expected status per role for retrieve / update / delete of an object in the shared project.
RETRIEVE = {"owner": 200, "editor": 200, "viewer": 200, "stranger": 404, "anonymous": 401}
UPDATE = {"owner": 200, "editor": 200, "viewer": 403, "stranger": 404, "anonymous": 401}
DELETE = {"owner": 204, "editor": 403, "viewer": 403, "stranger": 404, "anonymous": 401}


def api(people, client_for, role):
    return client_for(None if role == "anonymous" else people[role])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("resource", RESOURCES)
def test_list(world, client_for, role, resource):
    people, objects = world
    response = api(people, client_for, role).get(f"/api/{resource}/")
    if role == "anonymous":
        assert response.status_code == 401
        return
    assert response.status_code == 200
    ids = [item["id"] for item in response.json()["results"]]
    assert (objects[resource].id in ids) == (role != "stranger")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("resource", RESOURCES)
def test_retrieve(world, client_for, role, resource):
    people, objects = world
    response = api(people, client_for, role).get(f"/api/{resource}/{objects[resource].id}/")
    assert response.status_code == RETRIEVE[role]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("resource", RESOURCES)
def test_update(world, client_for, role, resource):
    people, objects = world
    response = api(people, client_for, role).patch(
        f"/api/{resource}/{objects[resource].id}/", update_body(resource), format="json"
    )
    assert response.status_code == UPDATE[role], response.content


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("resource", RESOURCES)
def test_delete(world, client_for, role, resource):
    people, objects = world
    obj = objects[resource]
    if resource == "runs":  # a queued run cannot be deleted while it may start; finish it first
        type(obj).objects.filter(id=obj.id).update(status="failed")
    response = api(people, client_for, role).delete(f"/api/{resource}/{obj.id}/")
    assert response.status_code == DELETE[role], response.content
    assert type(obj).objects.filter(id=obj.id).exists() == (role != "owner")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("resource", RESOURCES)
def test_create(world, client_for, role, resource):
    people, objects = world
    response = api(people, client_for, role).post(
        f"/api/{resource}/", new_body(resource, people["project"].id, 1), format="json"
    )
    if role == "anonymous":
        expected = 401
    elif resource == "projects" or role in ("owner", "editor"):
        expected = 201
    elif role == "viewer":
        expected = 403  # may see the project, may not write in it
    else:
        expected = 400  # the project id reads as 'does not exist' to a stranger: no leak
    assert response.status_code == expected, response.content
    if expected == 400:
        assert "does not exist" in response.json()["detail"]


SHARE = {"owner": 200, "editor": 403, "viewer": 403, "stranger": 404, "anonymous": 401}
RUN_ACTION = {"owner": 200, "editor": 200, "viewer": 403, "stranger": 404, "anonymous": 401}
READ = {"owner": 200, "editor": 200, "viewer": 200, "stranger": 404, "anonymous": 401}


@pytest.mark.parametrize("role", ROLES)
def test_share_and_unshare_are_for_owners(world, client_for, role):
    people, objects = world
    client = api(people, client_for, role)
    pid = objects["projects"].id
    assert (
        client.post(f"/api/projects/{pid}/share/", {"group": "viewers", "role": "editor"}).status_code
        == SHARE[role]
    )
    assert client.post(f"/api/projects/{pid}/unshare/", {"group": "viewers"}).status_code == SHARE[role]


@pytest.mark.parametrize("role", ROLES)
def test_run_cancel(world, client_for, role):
    people, objects = world
    response = api(people, client_for, role).post(f"/api/runs/{objects['runs'].id}/cancel/")
    assert response.status_code == RUN_ACTION[role]


@pytest.mark.parametrize("role", ROLES)
def test_run_resume(world, client_for, role):
    people, objects = world
    run = objects["runs"]
    type(run).objects.filter(id=run.id).update(status="failed", error="x")
    response = api(people, client_for, role).post(f"/api/runs/{run.id}/resume/")
    assert response.status_code == RUN_ACTION[role]


@pytest.mark.parametrize("role", ROLES)
def test_run_finetune(world, client_for, role):
    people, objects = world
    run = objects["runs"]
    type(run).objects.filter(id=run.id).update(status="succeeded")
    response = api(people, client_for, role).post(
        f"/api/runs/{run.id}/fine-tune/", {"overrides": ["train.lr=0.0001"]}, format="json"
    )
    assert response.status_code == {**RUN_ACTION, "owner": 201, "editor": 201}[role], response.content


@pytest.mark.parametrize("role", ROLES)
def test_run_metrics_read_and_write(world, client_for, role):
    people, objects = world
    client = api(people, client_for, role)
    url = f"/api/runs/{objects['runs'].id}/metrics/"
    assert client.get(url).status_code == READ[role]
    batch = {"points": [{"name": "loss", "step": 1, "value": 0.5}]}
    assert client.post(url, batch, format="json").status_code == RUN_ACTION[role]


def test_sharing_takes_effect_and_can_be_revoked(world, client_for):
    people, objects = world
    stranger = client_for(people["stranger"])
    from django.contrib.auth.models import Group

    people["stranger"].groups.add(Group.objects.create(name="newcomers"))
    owner = client_for(people["owner"])
    pid = objects["projects"].id
    owner.post(f"/api/projects/{pid}/share/", {"group": "newcomers", "role": "viewer"})
    assert stranger.get(f"/api/runs/{objects['runs'].id}/").status_code == 200
    owner.post(f"/api/projects/{pid}/unshare/", {"group": "newcomers"})
    assert stranger.get(f"/api/runs/{objects['runs'].id}/").status_code == 404


PREDICT = {"owner": 400, "editor": 400, "viewer": 400, "stranger": 404, "anonymous": 401}


@pytest.mark.parametrize("role", ROLES)
def test_run_predict_is_a_read(world, client_for, role):
    """Viewers may predict (400 here only because the run has no checkpoint yet)."""
    people, objects = world
    response = api(people, client_for, role).post(
        f"/api/runs/{objects['runs'].id}/predict/", {"inputs": [[0, 0]]}, format="json"
    )
    assert response.status_code == PREDICT[role]


@pytest.mark.parametrize("role", ROLES)
def test_dataset_upload_needs_editor(world, client_for, role):
    from django.core.files.uploadedfile import SimpleUploadedFile

    people, _ = world
    body = {
        "project": people["project"].id,
        "name": "u",
        "file": SimpleUploadedFile("t.csv", b"a,b\n1,0\n2,1\n"),
    }
    response = api(people, client_for, role).post("/api/datasets/upload/", body, format="multipart")
    expected = {"owner": 201, "editor": 201, "viewer": 403, "stranger": 400, "anonymous": 401}[role]
    assert response.status_code == expected
