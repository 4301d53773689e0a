"""API tokens (accounts.authentication): the token's user in one query; unknown keys and inactive users 401."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from layerlab.apps.accounts.services import user_token

pytestmark = pytest.mark.django_db


def me(header: str):
    return APIClient().get("/api/auth/me/", HTTP_AUTHORIZATION=header)


def test_a_token_is_its_user_in_one_query(people):
    token = user_token(username="editor")
    me(f"Token {token}")
    with CaptureQueriesContext(connection) as queries:
        response = me(f"Token {token}")
    assert response.status_code == 200
    assert response.json() == {"id": people["editor"].id, "username": "editor", "is_superuser": False,
                               "groups": ["editors"]}  # fmt: skip
    token_reads = [q["sql"] for q in queries.captured_queries if "authtoken_token" in q["sql"]]
    assert len(token_reads) == 1 and "auth_user" in token_reads[0]


def test_unknown_malformed_and_inactive_tokens_are_401(people):
    token = user_token(username="viewer")
    unknown = me("Token " + "0" * 40)
    assert unknown.status_code == 401 and "Invalid token" in unknown.content.decode()
    assert me(f"Token {token} extra").status_code == 401  # DRF's header rules still apply
    assert me("Token ' OR '1'='1").status_code == 401
    people["viewer"].is_active = False
    people["viewer"].save()
    inactive = me(f"Token {token}")
    assert inactive.status_code == 401 and "inactive" in inactive.content.decode()


def test_a_token_user_is_fully_loaded(people):
    """Views may read any field of request.user: none of them is left to load later."""
    from layerlab.apps.accounts.authentication import token_user

    user = token_user(user_token(username="owner"))
    assert user == people["owner"] and user.get_deferred_fields() == set()
    assert token_user("no-such-key") is None
