"""Sharing a project with users by name and with groups: the members API and the project page."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def csrf(browser) -> str:
    return browser.get("/").cookies["csrftoken"].value


def test_api_owner_adds_lists_and_removes_a_user_by_name(client_for, people):
    from django.contrib.auth.models import User

    project = people["project"]
    guest = User.objects.create_user("guest", password="guest-Secret-pass-42")
    owner = client_for(people["owner"])
    url = f"/api/projects/{project.id}/members/"
    assert client_for(guest).get(f"/api/projects/{project.id}/").status_code == 404
    added = owner.post(url, {"user": "guest", "role": "editor"}, format="json")
    assert added.status_code == 201, added.content
    assert {"kind": "user", "name": "guest", "role": "editor", "removable": True, "users": []} in added.json()
    # The member now sees the project and may write in it, but not manage members.
    assert client_for(guest).get(f"/api/projects/{project.id}/").json()["my_role"] == "editor"
    assert client_for(guest).post(url, {"user": "stranger"}, format="json").status_code == 403
    rows = client_for(people["viewer"]).get(url).json()
    assert rows[0] == {"kind": "user", "name": "owner", "role": "owner", "removable": False, "users": []}
    assert any(r["kind"] == "group" and r["name"] == "viewers" and r["users"] == ["viewer"] for r in rows)
    assert owner.delete(f"{url}user/guest/").status_code == 204
    assert client_for(guest).get(f"/api/projects/{project.id}/").status_code == 404


def test_api_members_errors_are_clear_and_scoped(client_for, people):
    project = people["project"]
    url = f"/api/projects/{project.id}/members/"
    owner = client_for(people["owner"])
    missing = owner.post(url, {"user": "nobody", "role": "viewer"}, format="json")
    assert missing.status_code == 400 and "no user named 'nobody'" in missing.json()["detail"]
    group_owner = owner.post(url, {"group": "viewers", "role": "owner"}, format="json")
    assert group_owner.status_code == 400 and "role" in group_owner.json()["detail"]
    both = owner.post(url, {"user": "viewer", "group": "viewers"}, format="json")
    assert both.status_code == 400
    assert owner.delete(f"{url}user/owner/").status_code == 400  # the owner stays
    # Someone who cannot see the project gets 404, never a hint that it exists.
    stranger = client_for(people["stranger"])
    assert stranger.get(url).status_code == 404
    assert stranger.post(url, {"user": "stranger", "role": "owner"}, format="json").status_code == 404
    assert stranger.delete(f"{url}group/viewers/").status_code == 404
    assert client_for(people["editor"]).delete(f"{url}group/viewers/").status_code == 403


def test_api_owner_can_make_a_co_owner_who_then_manages_members(client_for, people):
    project = people["project"]
    url = f"/api/projects/{project.id}/members/"
    assert (
        client_for(people["owner"])
        .post(url, {"user": "stranger", "role": "owner"}, format="json")
        .status_code
        == 201
    )
    co = client_for(people["stranger"])
    assert co.post(url, {"group": "viewers", "role": "editor"}, format="json").status_code == 201
    assert project.shares.get(group__name="viewers").get_role_display() == "editor"


def test_project_page_shares_with_a_user_and_removes_them(signed_in, people):
    project = people["project"]
    owner = signed_in("owner")
    token = csrf(owner)
    page = owner.get(f"/projects/{project.id}/").content.decode()
    assert 'value="owner"' in page  # the owner role is offered to owners
    done = owner.post(
        f"/projects/{project.id}/members/",
        {"csrfmiddlewaretoken": token, "kind": "user", "name": "stranger", "role": "viewer"},
        follow=True,
    )
    assert "stranger" in done.content.decode() and project.members.get().user.username == "stranger"
    assert signed_in("stranger").get(f"/projects/{project.id}/").status_code == 200
    missing = owner.post(
        f"/projects/{project.id}/members/",
        {"csrfmiddlewaretoken": token, "kind": "user", "name": "nobody", "role": "viewer"},
        follow=True,
    )
    assert "no user named &#x27;nobody&#x27;" in missing.content.decode()
    owner.post(
        f"/projects/{project.id}/members/remove/",
        {"csrfmiddlewaretoken": token, "kind": "user", "name": "stranger"},
    )
    assert not project.members.exists()
    assert signed_in("stranger").get(f"/projects/{project.id}/").status_code == 404


def test_only_owners_manage_members_on_the_page(signed_in, people):
    project = people["project"]
    editor = signed_in("editor")
    assert "Share this project" not in editor.get(f"/projects/{project.id}/").content.decode()
    refused = editor.post(
        f"/projects/{project.id}/members/",
        {"csrfmiddlewaretoken": csrf(editor), "kind": "user", "name": "editor", "role": "owner"},
    )
    assert refused.status_code == 403 and not project.members.exists()
    stranger = signed_in("stranger")
    hidden = stranger.post(
        f"/projects/{project.id}/members/remove/",
        {"csrfmiddlewaretoken": csrf(stranger), "kind": "group", "name": "viewers"},
    )
    assert hidden.status_code == 404 and project.shares.filter(group__name="viewers").exists()
