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
