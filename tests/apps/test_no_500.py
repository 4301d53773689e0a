"""No request makes a 500: every endpoint and action, fed malformed and wrongly typed bodies."""

from __future__ import annotations

import pytest

from layerlab.apps.datasets.services import dataset_register
from layerlab.apps.journal.services import entry_create
from layerlab.apps.networks.services import network_create
from layerlab.apps.runs.services import run_create, run_start_external

pytestmark = pytest.mark.django_db

BODIES = [
    None,
    [],
    [1, "x"],
    "text",
    12,
    {"project": "x"},
    {"project": -1, "name": None},
    {"name": ["a"], "config": "no", "spec": 3, "data": [1]},
    {"config": {"train": {"epochs": -5, "lr": "fast"}, "model": {"layers": "many"}}},
    {"config": {"data": {"source": {"nested": True}}}},
    {"points": [{"name": 1, "step": 1, "value": 1}], "series": "x"},
    {"series": [{"name": "a", "steps": "1", "values": None}]},
    {"inputs": [[[["deep"]]]], "top_k": "all"},
    {"inputs": [], "files": []},
    {"group": {"x": 1}, "role": ["editor"]},
    {"status": "exploded", "summary": [1], "error": {"x": 1}},
    {"overrides": [1, None, "a.b.c.d=e"]},
    {"overrides": ["train=3"]},
    {"title": "x" * 400, "date": "yesterday", "run": "r"},
    {"spec": {"layers": [{"kind": "conv2d"}], "input": "big"}},
    {"spec": {"layers": [{"kind": "linear", "out": -3}], "input": [2]}},
]


@pytest.fixture
def urls(people):
    owner, project = people["owner"], people["project"]
    dataset = dataset_register(project=project, user=owner, name="d", data={"source": "spiral"})
    network = network_create(
        project=project, user=owner, name="n", spec={"layers": [{"kind": "linear", "out": 2}]}
    )
    run = run_create(project=project, user=owner, config={"train": {"epochs": 1}})
    logged = run_start_external(project=project, user=owner)
    entry = entry_create(project=project, author=owner, title="t")
    return [
        "/api/projects/", f"/api/projects/{project.id}/", f"/api/projects/{project.id}/share/",
        f"/api/projects/{project.id}/unshare/", "/api/datasets/", f"/api/datasets/{dataset.id}/",
        "/api/datasets/upload/", "/api/networks/", f"/api/networks/{network.id}/", "/api/runs/",
        f"/api/runs/{run.id}/", f"/api/runs/{run.id}/cancel/", f"/api/runs/{run.id}/resume/",
        f"/api/runs/{run.id}/fine-tune/", f"/api/runs/{run.id}/predict/", f"/api/runs/{logged.id}/finish/",
        f"/api/runs/{logged.id}/metrics/", "/api/journal/", f"/api/journal/{entry.id}/", "/api/auth/token/",
    ]  # fmt: skip


@pytest.mark.parametrize("method", ["post", "patch", "put"])
def test_malformed_bodies_never_make_a_500(people, client_for, urls, method):
    import json

    api = client_for(people["owner"])
    for url in urls:
        for body in BODIES:
            response = getattr(api, method)(url, json.dumps(body), content_type="application/json")
            assert response.status_code < 500, (method, url, body, response.content[:300])
            if response.status_code >= 400:
                assert "detail" in response.json(), (url, body)
        garbage = getattr(api, method)(url, b"\xff\xfe{{", content_type="application/json")
        assert garbage.status_code < 500, (method, url)
        # Past the decoder's recursion limit, and deep enough to overflow whatever walks it later.
        for depth in (100_000, 500):
            deep = b'{"name": ' + b"[" * depth + b"]" * depth + b"}"
            response = getattr(api, method)(url, deep, content_type="application/json")
            assert response.status_code < 500, (method, url, depth, response.content[:300])


def test_odd_query_parameters_never_make_a_500(people, client_for, urls):
    api = client_for(people["owner"])
    for url in urls:
        for query in ({"points": "-1"}, {"points": "x"}, {"limit": "-3", "offset": "x"}, {"ordering": "nope"},
                      {"name": ",,,"}, {"per_class": "0"}, {"search": "\x00"}, {"min_test_accuracy": "abc"}):  # fmt: skip
            assert api.get(url, query).status_code < 500, (url, query)
