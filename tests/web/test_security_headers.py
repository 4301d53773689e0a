"""The dashboard's pages carry a Content-Security-Policy that allows scripts from this server only."""

import pytest


@pytest.mark.django_db
def test_pages_forbid_scripts_from_elsewhere_and_inline(client, lab_home):
    response = client.get("/signin/")
    policy = response["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )
    assert "frame-ancestors 'none'" in policy


@pytest.mark.django_db
def test_api_and_admin_keep_their_own_headers(client, lab_home):
    assert "Content-Security-Policy" not in client.get("/admin/login/")
    assert "Content-Security-Policy" not in client.get("/api/docs/")
