"""Journal entries (user-written and automatic), the admin, throttling, projects' own rules."""

from __future__ import annotations

import pytest

from layerlab.apps.journal.models import Entry
from layerlab.apps.projects.services import project_create
from layerlab.apps.runs.services import run_create

pytestmark = pytest.mark.django_db


def test_editor_writes_and_edits_an_entry_linked_to_a_run(people, client_for):
    api = client_for(people["editor"])
    run = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}})
    response = api.post(
        "/api/journal/",
        {"project": people["project"].id, "run": run.id, "title": "Idea", "body": "# try *dropout*"},
        format="json",
    )
    assert response.status_code == 201 and response.json()["author"] == "editor"
    entry_id = response.json()["id"]
    assert api.patch(f"/api/journal/{entry_id}/", {"body": "done"}, format="json").json()["body"] == "done"
    assert api.get("/api/journal/", {"search": "Idea"}).json()["count"] == 1


def test_an_entry_cannot_link_a_run_of_another_project(people, client_for):
    other = project_create(owner=people["owner"], name="other")
    run = run_create(project=other, user=people["owner"], config={"train": {"epochs": 1}})
    response = client_for(people["owner"]).post(
        "/api/journal/", {"project": people["project"].id, "run": run.id, "title": "x"}, format="json"
    )
    assert response.status_code == 400 and "another project" in response.json()["detail"]
    assert not Entry.objects.exists()


def test_automatic_entries_are_editable(people, client_for):
    from layerlab.apps.journal.services import entry_for_finished_run

    run = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}})
    run.status, run.error = "failed", "data.path: missing"
    entry = entry_for_finished_run(run)
    assert entry.automatic and "missing" in entry.body
    response = client_for(people["editor"]).patch(
        f"/api/journal/{entry.id}/", {"body": "my notes"}, format="json"
    )
    assert response.status_code == 200 and response.json()["automatic"] is True


def test_duplicate_project_names_per_owner_are_400(people, client_for):
    api = client_for(people["owner"])
    response = api.post("/api/projects/", {"name": "lab"}, format="json")
    assert response.status_code == 400 and response.json()["error"] == "project_error"
    assert (
        client_for(people["editor"]).post("/api/projects/", {"name": "lab"}, format="json").status_code == 201
    )


def test_sharing_with_an_unknown_group_or_role_is_400(people, client_for):
    api = client_for(people["owner"])
    pid = people["project"].id
    assert api.post(f"/api/projects/{pid}/share/", {"group": "nobody"}, format="json").status_code == 400
    assert (
        api.post(
            f"/api/projects/{pid}/share/", {"group": "viewers", "role": "god"}, format="json"
        ).status_code
        == 400
    )


def test_admin_pages_work_for_superusers(people, client):
    from django.contrib.auth.models import User

    User.objects.create_superuser("root", password="Root-pass-12345")
    client.login(username="root", password="Root-pass-12345")
    run = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}})
    for url in (
        "/admin/",
        "/admin/runs/run/",
        f"/admin/runs/run/{run.id}/change/",
        "/admin/projects/project/",
        "/admin/journal/entry/",
    ):
        assert client.get(url).status_code == 200, url


def test_superusers_see_every_project(people, client_for):
    from django.contrib.auth.models import User

    root = User.objects.create_superuser("root2", password="Root-pass-12345")
    assert client_for(root).get(f"/api/projects/{people['project'].id}/").status_code == 200


def test_anonymous_requests_are_throttled(client, lab_home, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "2/min", "user": "10/min"})

    cache.clear()
    codes = [
        client.post("/api/auth/token/", {"username": "x", "password": "y"}).status_code for _ in range(3)
    ]
    assert codes[:2] == [400, 400] and codes[2] == 429
    assert client.post("/api/auth/token/", {}).json()["error"] == "throttled"
    cache.clear()


def test_a_dataset_keeps_its_data_section_and_project(people, client_for):
    api = client_for(people["owner"])
    pid = people["project"].id
    made = api.post(
        "/api/datasets/", {"project": pid, "name": "sp", "data": {"source": "spiral"}}, format="json"
    ).json()
    other = project_create(owner=people["owner"], name="elsewhere")
    assert (
        api.patch(f"/api/datasets/{made['id']}/", {"data": {"source": "digits"}}, format="json").status_code
        == 400
    )
    assert api.patch(f"/api/datasets/{made['id']}/", {"project": other.id}, format="json").status_code == 400
    assert (
        api.patch(f"/api/datasets/{made['id']}/", {"name": "spiral-2"}, format="json").json()["name"]
        == "spiral-2"
    )


def test_an_entry_can_be_linked_to_a_run_later(people, client_for):
    api = client_for(people["editor"])
    run = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}})
    entry = api.post(
        "/api/journal/", {"project": people["project"].id, "title": "later"}, format="json"
    ).json()
    assert api.patch(f"/api/journal/{entry['id']}/", {"run": run.id}, format="json").json()["run"] == run.id
