"""Failed sign-ins are throttled on every login door: per user name, per address, 429 with Retry-After."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

DOORS = ["/signin/", "/api/auth/login/", "/admin/login/", "/api/auth/token/"]
GOOD = "owner-Secret-pass-42"


@pytest.fixture
def strict(settings, lab_home):
    settings.LAYERLAB_LOGIN_FAILURES_PER_USER = 3
    settings.LAYERLAB_LOGIN_FAILURES_PER_IP = 5
    settings.LAYERLAB_LOGIN_WINDOW_SECONDS = 600
    return settings


def sign_in(browser, url, username, password, address="10.0.0.1"):
    return browser.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize("url", DOORS)
def test_repeated_wrong_passwords_are_refused_with_429_and_retry_after(strict, people, url):
    browser = Client()
    for _ in range(3):
        assert sign_in(browser, url, "owner", "wrong").status_code in (200, 400)
    refused = sign_in(browser, url, "owner", GOOD)  # even the right password waits
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 600
    assert "too many failed sign-ins" in refused.content.decode().lower()
    # another user from another address is not affected
    assert sign_in(browser, url, "viewer", "viewer-Secret-pass-42", "10.0.0.2").status_code in (200, 302)


def test_the_token_endpoint_answers_json(strict, people):
    api = Client()
    for _ in range(3):
        api.post("/api/auth/token/", {"username": "owner", "password": "x"}, content_type="application/json")
    refused = api.post(
        "/api/auth/token/", {"username": "owner", "password": GOOD}, content_type="application/json"
    )
    assert refused.status_code == 429 and refused.json()["error"] == "throttled"


def test_the_dashboard_says_so_on_its_sign_in_page(strict, people):
    browser = Client()
    for _ in range(3):
        sign_in(browser, "/signin/", "owner", "wrong")
    page = sign_in(browser, "/signin/", "owner", "wrong").content.decode()
    assert "Too many failed sign-ins" in page and 'role="alert"' in page


def test_many_user_names_from_one_address_are_throttled(strict, people):
    browser = Client()
    for index in range(5):
        sign_in(browser, "/signin/", f"guess{index}", "wrong")
    assert sign_in(browser, "/signin/", "owner", GOOD).status_code == 429
    assert sign_in(browser, "/signin/", "owner", GOOD, "10.0.0.9").status_code == 302


def test_a_successful_sign_in_clears_the_count_of_its_user_name(strict, people):
    browser = Client()
    for _ in range(2):
        sign_in(browser, "/signin/", "owner", "wrong")
    assert sign_in(browser, "/signin/", "owner", GOOD).status_code == 302
    browser = Client()
    for _ in range(2):
        sign_in(browser, "/signin/", "owner", "wrong", "10.0.0.3")
    assert sign_in(browser, "/signin/", "owner", GOOD, "10.0.0.3").status_code == 302


def test_the_counts_live_in_a_file_cache_shared_by_the_processes():
    from layerlab.server import settings as lab

    login = lab.CACHES["login"]
    assert login["BACKEND"].endswith("FileBasedCache")
    assert login["LOCATION"].startswith(str(lab.LAYERLAB_HOME))
