"""Shared fixtures of the server tests: users, groups, a shared project, API clients.

Engine tests never request these, so they stay free of Django database access.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def lab_home(settings, tmp_path, monkeypatch):
    """Point the server's files (runs, cache, uploads) at a temporary LAYERLAB_HOME."""
    settings.LAYERLAB_HOME = tmp_path
    settings.LAYERLAB_RUNS_DIR = tmp_path / "runs"
    settings.LAYERLAB_CACHE_DIR = tmp_path / "cache"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "files")},
        },
    }
    # Fast hashing: the default PBKDF2 would dominate the suite's time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Failed sign-ins are counted per test (the lab's file cache would carry them from test to test).
    settings.CACHES = {
        **settings.CACHES,
        "login": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"login-{tmp_path}",
        },
    }
    # Jobs are recorded, not run, unless a test asks for the immediate backend.
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    # DRF binds the rates to the class at import, so they are patched there.
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "100000/min", "user": "100000/min"})
    return tmp_path


@pytest.fixture
def people(db, lab_home):
    """owner, editor (group 'editors'), viewer (group 'viewers'), stranger; a project shared with both groups."""
    from django.contrib.auth.models import Group, User

    from layerlab.apps.projects.services import project_create, project_share

    users = {
        name: User.objects.create_user(name, password=f"{name}-Secret-pass-42")
        for name in ("owner", "editor", "viewer", "stranger")
    }
    editors, viewers = Group.objects.create(name="editors"), Group.objects.create(name="viewers")
    users["editor"].groups.add(editors)
    users["viewer"].groups.add(viewers)
    project = project_create(owner=users["owner"], name="lab", description="shared project")
    project_share(project=project, group_name="editors", role="editor")
    project_share(project=project, group_name="viewers", role="viewer")
    users["project"] = project
    return users


@pytest.fixture
def client_for(db):
    """``client_for(user)`` -> an APIClient authenticated with the user's token (None: anonymous)."""
    from rest_framework.test import APIClient

    from layerlab.apps.accounts.services import user_token

    def make(user):
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {user_token(username=user.username)}")
        return client

    return make


# Without Debian's Chromium the browser tests cannot run: they are left out and said once, with the fix.
CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(config, items):
    import os

    if os.path.exists(CHROMIUM):
        return
    browser = [item for item in items if item.path.name == "test_browser.py"]
    if browser:
        items[:] = [item for item in items if item.path.name != "test_browser.py"]
        config.hook.pytest_deselected(items=browser)
        config.stash[BROWSER_LEFT_OUT] = len(browser)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    left_out = config.stash.get(BROWSER_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(
            f"browser tests: {left_out} not run, {CHROMIUM} is absent; "
            "install it (sudo apt-get install -y chromium) and run `make test` again",
            yellow=True,
        )


BROWSER_LEFT_OUT = pytest.StashKey[int]()
