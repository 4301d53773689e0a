"""API plumbing: token exchange, schema and docs, error shape, static files."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_token_exchange_and_me(people, client):
    response = client.post("/api/auth/token/", {"username": "owner", "password": "owner-Secret-pass-42"})
    assert response.status_code == 200
    token = response.json()["token"]
    me = client.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Token {token}")
    assert me.status_code == 200 and me.json()["username"] == "owner"


def test_token_exchange_with_a_wrong_password_is_400(people, client):
    response = client.post("/api/auth/token/", {"username": "owner", "password": "nope"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"


def test_schema_and_local_swagger_ui(people, client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/runs/{id}/cancel/" in paths and "/api/runs/{id}/metrics/" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "cdn" not in html.lower() and "/static/drf_spectacular_sidecar/" in html
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200


def test_static_paths_cannot_escape(client):
    assert client.get("/static/../settings.py").status_code == 404


def test_malformed_json_is_400_in_the_error_shape(people, client_for):
    api = client_for(people["owner"])
    response = api.generic("POST", "/api/projects/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) >= {"error", "detail"}


def test_unknown_config_key_is_400_naming_the_key(people, client_for):
    api = client_for(people["owner"])
    response = api.post(
        "/api/runs/", {"project": people["project"].id, "config": {"train": {"epoch": 2}}}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "config_error" and "epoch" in body["detail"]


@pytest.mark.parametrize(
    ("method", "url", "body", "error"),
    [
        ("post", "/api/projects/", {"name": "a", "bogus": 1}, "invalid"),
        ("post", "/api/runs/", {"project": 0, "config": {}}, "invalid"),
        ("post", "/api/runs/", {"project": "abc"}, "invalid"),
        ("post", "/api/runs/", {"config": {"train": {"epochs": "many"}}}, "config_error"),
        ("post", "/api/runs/", {"config": {"data": {"source": "npz"}}}, "config_error"),
        ("post", "/api/runs/", {"overrides": ["nonsense"]}, "config_error"),
        (
            "post",
            "/api/runs/",
            {"config": {"model": {"layers": [{"kind": "conv2d", "out": 3, "kernel": 9}]}}},
            "shape_error",
        ),
        ("post", "/api/runs/", {"config": [1, 2]}, "invalid"),
        ("post", "/api/runs/", [1, 2], "invalid"),
        ("post", "/api/networks/", {"name": "n", "spec": "not a spec"}, "invalid"),
        ("post", "/api/journal/", {"title": ""}, "invalid"),
    ],
)
def test_bad_input_is_400_with_the_field_and_reason(people, client_for, method, url, body, error):
    if isinstance(body, dict) and "project" not in body:
        body = {**body, "project": people["project"].id}
    response = getattr(client_for(people["owner"]), method)(url, body, format="json")
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["error"] == error and payload["detail"]


def test_unknown_field_is_named(people, client_for):
    response = client_for(people["owner"]).post(
        "/api/projects/", {"name": "a", "colour": "red"}, format="json"
    )
    assert response.status_code == 400 and "colour: unknown field" in response.json()["detail"]


def test_huge_body_is_a_json_400(people, client_for):
    import json

    body = json.dumps({"name": "x" * (9 * 1024 * 1024)})
    response = client_for(people["owner"]).generic(
        "POST", "/api/projects/", body, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["error"] == "too_large"


def test_run_rename_rejects_anything_else(people, client_for):
    from layerlab.apps.runs.services import run_create

    run = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}})
    api = client_for(people["owner"])
    assert api.patch(f"/api/runs/{run.id}/", {"name": "new"}, format="json").json()["name"] == "new"
    assert api.patch(f"/api/runs/{run.id}/", {"status": "succeeded"}, format="json").status_code == 400
    assert api.patch(f"/api/runs/{run.id}/", [1], format="json").status_code == 400


def test_not_found_has_the_error_shape(people, client_for):
    response = client_for(people["owner"]).get("/api/runs/999999/metrics/")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_invalid_filters_are_400(people, client_for):
    response = client_for(people["owner"]).get("/api/runs/?status=bogus&created_after=notadate")
    assert response.status_code == 400 and "status" in response.json()["detail"]


def test_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", validate=True, fail_on_warn=True, file=str(tmp_path / "schema.yaml"))
    assert "/api/runs/{id}/predict/" in (tmp_path / "schema.yaml").read_text()


def test_database_races_and_bad_values_are_4xx_not_500():
    from django.db import DataError, IntegrityError

    from layerlab.server.exceptions import exception_handler

    conflict = exception_handler(IntegrityError("UNIQUE constraint failed"), {})
    assert conflict.status_code == 409 and conflict.data["error"] == "conflict"
    bad = exception_handler(DataError("value too long for type character varying(200)"), {})
    assert bad.status_code == 400 and "too long" in bad.data["detail"]
