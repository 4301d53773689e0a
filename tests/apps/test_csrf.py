"""Session authentication keeps CSRF enforced: a POST without the token is refused, with it accepted."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def logged_in_browser(people) -> APIClient:
    browser = APIClient(enforce_csrf_checks=True)
    page = browser.get("/api/auth/login/")
    assert page.status_code == 200  # the browsable API's login page
    token = page.cookies["csrftoken"].value
    response = browser.post(
        "/api/auth/login/",
        {
            "username": "owner",
            "password": "owner-Secret-pass-42",
            "csrfmiddlewaretoken": token,
            "next": "/api/",
        },
    )
    assert response.status_code == 302
    return browser


def test_session_post_without_csrf_token_is_refused(people):
    browser = logged_in_browser(people)
    assert browser.get("/api/projects/").status_code == 200  # the session authenticates reads
    response = browser.post("/api/projects/", {"name": "forged"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_session_post_with_csrf_token_is_accepted(people):
    browser = logged_in_browser(people)
    token = browser.cookies["csrftoken"].value
    response = browser.post("/api/projects/", {"name": "honest"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201


def test_token_clients_need_no_csrf_token(people, client_for):
    api = client_for(people["owner"])
    api.handler.enforce_csrf_checks = True
    assert api.post("/api/projects/", {"name": "script"}, format="json").status_code == 201
