"""The runs list: the detail's fields in a constant number of queries, ``?fields=``, and metric batches' queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from layerlab.apps.datasets.models import Dataset
from layerlab.apps.runs.models import Checkpoint, Run, RunTag
from layerlab.apps.runs.services import run_start_external

pytestmark = pytest.mark.django_db


def make_runs(people, count: int) -> list[Run]:
    project, owner = people["project"], people["owner"]
    dataset, _ = Dataset.objects.get_or_create(
        project=project, name="spiral", defaults={"kind": "builtin", "data": {"source": "spiral"}}
    )
    runs = Run.objects.bulk_create(
        [
            Run(project=project, created_by=owner, name=f"r{i}", status="succeeded", epoch=2, epochs=2,
                dataset=dataset, config={"data": {"source": "spiral"}, "train": {"lr": 0.01 * i}},
                summary={"test_accuracy": i / count})
            for i in range(count)
        ]
    )  # fmt: skip
    for run in runs[::3]:
        RunTag.objects.create(run=run, name="baseline")
        Checkpoint.objects.create(run=run, epoch=2, path=f"checkpoints/epoch-{run.id}.ckpt")
    child = Run.objects.create(project=project, created_by=owner, name="child", parent=runs[0])
    return [*runs, child]


def list_queries(client) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/runs/?limit=500&ordering=-created_at&status=succeeded")
    assert response.status_code == 200, response.content
    return len(queries), response.json()


def test_the_list_takes_as_many_queries_for_100_runs_as_for_10(people, client_for):
    client = client_for(people["viewer"])
    make_runs(people, 10)
    few, page = list_queries(client)
    assert page["count"] == 10
    make_runs(people, 90)
    many, page = list_queries(client)
    assert page["count"] == 100 and len(page["results"]) == 100
    assert few == many <= 8  # auth, count, rows, tags, checkpoints, children (+ the role's reads)


def test_a_list_row_is_the_detail_of_the_run(people, client_for, tmp_path):
    client = client_for(people["owner"])
    runs = make_runs(people, 4)
    upload = tmp_path / "uploads" / "data.npz"  # inside LAYERLAB_HOME: never shown
    Run.objects.filter(id=runs[1].id).update(config={"data": {"path": str(upload)}})
    rows = {r["id"]: r for r in client.get("/api/runs/?limit=100").json()["results"]}
    assert len(rows) == len(runs)
    for run in runs:
        detail = client.get(f"/api/runs/{run.id}/").json()
        assert rows[run.id] == detail
    assert "path" not in rows[runs[1].id]["config"]["data"]
    assert rows[runs[0].id]["children"] == [runs[-1].id] and rows[runs[0].id]["tags"] == ["baseline"]


def test_fields_picks_what_each_row_carries(people, client_for):
    client = client_for(people["owner"])
    make_runs(people, 3)
    page = client.get("/api/runs/?fields=id,status,tags,summary").json()
    assert {tuple(r) for r in page["results"]} == {("id", "tags", "status", "summary")}
    bad = client.get("/api/runs/?fields=id,password")
    assert bad.status_code == 400 and "password" in bad.content.decode()


def test_a_metric_batch_reads_no_relations_of_its_run(people, client_for):
    run = run_start_external(project=people["project"], user=people["editor"], name="script")
    client = client_for(people["editor"])
    body = {"series": [{"name": "loss", "steps": list(range(10)), "values": [0.1] * 10}]}
    client.post(f"/api/runs/{run.id}/metrics/", body, format="json")
    with CaptureQueriesContext(connection) as queries:
        response = client.post(f"/api/runs/{run.id}/metrics/", body, format="json")
    assert response.status_code == 200 and response.json() == {"stored": 10}
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "runs_checkpoint" not in sql and "runs_runtag" not in sql and '"config"' not in sql
    assert Run.objects.get(id=run.id).metric_points.count() == 10  # acknowledged: stored
    stranger = client_for(people["stranger"]).post(f"/api/runs/{run.id}/metrics/", body, format="json")
    assert stranger.status_code == 404  # invisible runs stay not found
    viewer = client_for(people["viewer"]).post(f"/api/runs/{run.id}/metrics/", body, format="json")
    assert viewer.status_code == 403


def test_list_times_are_the_details_in_any_time_zone(people, client_for):
    """Times read straight from the database show as the detail shows them, in the current zone."""
    client = client_for(people["owner"])
    runs = make_runs(people, 2)
    start = dt.datetime(2026, 3, 29, 0, 30, 15, tzinfo=dt.UTC)  # the night Paris moves to summer time
    Run.objects.filter(id=runs[0].id).update(started_at=start, finished_at=start + dt.timedelta(hours=2))
    Run.objects.filter(id=runs[1].id).update(started_at=start.replace(microsecond=123456), heartbeat_at=start)
    for zone in ("UTC", "Europe/Paris", "America/New_York"):
        with timezone.override(zone):
            rows = {r["id"]: r for r in client.get("/api/runs/?limit=100").json()["results"]}
            for run in runs:
                detail = client.get(f"/api/runs/{run.id}/").json()
                assert {
                    k: rows[run.id][k] for k in ("created_at", "started_at", "finished_at", "seconds")
                } == {k: detail[k] for k in ("created_at", "started_at", "finished_at", "seconds")}
    assert rows[runs[0].id]["seconds"] == 7200.0
    assert rows[runs[0].id]["started_at"] == "2026-03-28T20:30:15-04:00"


def test_the_list_filters_and_pages_like_the_queryset(people, client_for):
    client = client_for(people["owner"])
    runs = make_runs(people, 5)
    Run.objects.filter(id__in=[runs[1].id, runs[3].id]).update(status="failed")
    page = client.get("/api/runs/?status=failed&ordering=name&fields=id,name").json()
    assert page["count"] == 2 and page["results"] == [
        {"id": runs[1].id, "name": "r1"},
        {"id": runs[3].id, "name": "r3"},
    ]
    second = client.get("/api/runs/?ordering=name&fields=name&limit=2&offset=2").json()
    assert [r["name"] for r in second["results"]] == ["r1", "r2"]  # child, r0, then these
    assert client.get("/api/runs/?status=failed&offset=50").json()["results"] == []
    none = client.get("/api/runs/?project=999999&fields=id").json()
    assert none["count"] == 0 and none["results"] == []
    assert client_for(people["stranger"]).get("/api/runs/").json()["count"] == 0


def test_a_metric_batch_for_no_run_is_404(people, client_for):
    client = client_for(people["editor"])
    body = {"series": [{"name": "loss", "steps": [0], "values": [0.1]}]}
    for run_id in ("999999", "abc", "99999999999999999999999", "0"):
        response = client.post(f"/api/runs/{run_id}/metrics/", body, format="json")
        assert response.status_code == 404, run_id
