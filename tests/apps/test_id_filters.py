"""API id filters: an out-of-range id is 400 (never 500); a hidden id and a missing one answer alike."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999999"
FILTERS = [
    "/api/runs/?project={}",
    "/api/runs/?dataset={}",
    "/api/runs/?network={}",
    "/api/runs/?parent={}",
    "/api/datasets/?project={}",
    "/api/networks/?project={}",
    "/api/journal/?project={}",
    "/api/journal/?run={}",
]


@pytest.mark.parametrize("url", FILTERS)
def test_id_filters_tell_nothing_and_never_overflow(people, client_for, url):
    from layerlab.apps.projects.services import project_create
    from layerlab.apps.runs.models import Run

    hidden_project = project_create(owner=people["stranger"], name="secret")
    hidden = Run.objects.create(project=hidden_project, name="hidden", created_by=people["stranger"])
    hidden_id = hidden_project.id if "project" in url else hidden.id
    api = client_for(people["viewer"])
    seen_hidden = api.get(url.format(hidden_id))
    seen_missing = api.get(url.format(hidden_id + 1000))
    assert seen_hidden.status_code == seen_missing.status_code == 200
    assert seen_hidden.json()["results"] == seen_missing.json()["results"] == []
    assert api.get(url.format(HUGE)).status_code == 400
    assert api.get(url.format("abc")).status_code == 400
