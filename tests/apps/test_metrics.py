"""Metrics: batch ingestion (limits, upserts), full and downsampled reads, the Python client."""

from __future__ import annotations

import math

import pytest

from layerlab.apps.runs.downsample import minmax_downsample
from layerlab.apps.runs.models import MetricPoint
from layerlab.apps.runs.services import run_start_external


def test_downsample_keeps_peaks_and_ends():
    steps = list(range(10_000))
    values = [math.sin(i / 50) for i in steps]
    values[4321] = 9.0  # a spike
    values[777] = -9.0
    s, v = minmax_downsample(steps, values, 200)
    assert len(s) <= 200 and s[0] == 0 and s[-1] == 9_999
    assert 9.0 in v and -9.0 in v
    assert s == sorted(s)


def test_downsample_leaves_short_series_alone():
    assert minmax_downsample([1, 2, 3], [3.0, 1.0, 2.0], 10) == ([1, 2, 3], [3.0, 1.0, 2.0])
    assert minmax_downsample([1, 2, 3], [3.0, 1.0, 2.0], 0) == ([1, 2, 3], [3.0, 1.0, 2.0])


@pytest.fixture
def logged(people):
    return run_start_external(project=people["project"], user=people["editor"], name="script")


@pytest.mark.django_db
def test_batch_of_10000_points_is_stored_and_resending_replaces(people, client_for, logged):
    api = client_for(people["editor"])
    points = [{"name": "loss", "step": i, "value": 1.0 / (i + 1)} for i in range(10_000)]
    url = f"/api/runs/{logged.id}/metrics/"
    assert api.post(url, {"points": points}, format="json").json() == {"stored": 10_000}
    again = api.post(url, {"points": [{"name": "loss", "step": 5, "value": 42.0}]}, format="json")
    assert again.status_code == 200
    assert MetricPoint.objects.filter(run=logged).count() == 10_000
    assert MetricPoint.objects.get(run=logged, step=5).value == 42.0
    full = api.get(url).json()["series"]["loss"]
    assert full["total"] == 10_000 and len(full["steps"]) == 10_000
    small = api.get(url, {"points": 100}).json()["series"]["loss"]
    assert len(small["steps"]) <= 100 and small["values"][0] == 1.0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"points": [{"name": "loss", "step": i, "value": 0.0} for i in range(10_001)]},
        {"points": [{"name": "loss", "step": "x", "value": 0.0}]},
        {"points": [{"name": "loss", "step": 1, "value": "NaN"}]},
        {"points": [{"name": "bad name!", "step": 1, "value": 1.0}]},
        {"points": []},
        {"nothing": 1},
        [1, 2, 3],
        {"series": [{"name": "loss", "steps": [1, 2], "values": [0.5]}]},
        {"series": [{"name": "loss", "steps": [True], "values": [0.5]}]},
        {"series": [{"name": "loss", "steps": [-1], "values": [0.5]}]},
        '{"series": [{"name": "loss", "steps": [1], "values": [Infinity]}]}',
        {"series": [{"name": "loss", "steps": list(range(6000)), "values": [0.0] * 6000}] * 2},
        {"series": [{"name": "loss", "steps": [1], "values": [1.0], "extra": 1}]},
    ],
)
def test_bad_batches_are_400_and_store_nothing(people, client_for, logged, body):
    api, url = client_for(people["editor"]), f"/api/runs/{logged.id}/metrics/"
    if isinstance(body, str):
        response = api.generic("POST", url, body, content_type="application/json")
    else:
        response = api.post(url, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid", "metric_error", "parse_error")
    assert not MetricPoint.objects.exists()


@pytest.mark.django_db
def test_compact_series_and_points_in_one_batch(people, client_for, logged):
    body = {
        "series": [{"name": "acc", "steps": [1, 2, 3], "values": [0.1, 0.2, 0.3]}],
        "points": [{"name": "loss", "step": 1, "value": 2.0}],
    }
    response = client_for(people["editor"]).post(f"/api/runs/{logged.id}/metrics/", body, format="json")
    assert response.json() == {"stored": 4}
    assert list(MetricPoint.objects.filter(run=logged, name="acc").values_list("step", "value")) == [
        (1, 0.1),
        (2, 0.2),
        (3, 0.3),
    ]


@pytest.mark.django_db
def test_finish_an_external_run(people, client_for, logged):
    api = client_for(people["editor"])
    response = api.post(
        f"/api/runs/{logged.id}/finish/",
        {"status": "succeeded", "summary": {"test_accuracy": 0.9}},
        format="json",
    )
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
    assert api.post(f"/api/runs/{logged.id}/finish/", {"status": "failed"}, format="json").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_client_logs_a_whole_run_splitting_large_batches(people, live_server, monkeypatch):
    from layerlab.apps.accounts.services import user_token
    from layerlab.client import ClientError, LabClient

    client = LabClient(live_server.url, user_token(username="editor"))
    sent = []
    original = client.request
    monkeypatch.setattr(client, "request", lambda *a, **k: (sent.append(a), original(*a, **k))[1])
    run = client.start_run(people["project"].id, name="outside", config={"lr": 0.1})
    points = [{"name": "acc", "step": i, "value": i / 25_000} for i in range(25_000)]
    assert client.log_metrics(run["id"], points=points) == 25_000
    assert client.log_metrics(run["id"], {"loss": 0.5, "acc": 1.0}, step=25_000) == 2
    assert sum(1 for a in sent if a[0] == "POST" and "metrics" in a[1]) == 4  # 10k + 10k + 5k + 1
    assert client.finish_run(run["id"], summary={"test_accuracy": 1.0})["status"] == "succeeded"
    lines = []
    assert client.follow(run["id"], lines.append, poll=0.01)["status"] == "succeeded"
    assert lines == [f"run {run['id']}: succeeded, epoch 0 of 0"]
    assert client.metrics(run["id"], points=50)["acc"]["total"] == 25_001
    with pytest.raises(ClientError) as info:
        LabClient(live_server.url, "wrong-token").run(run["id"])
    assert info.value.status == 401
    with pytest.raises(ClientError) as info:
        LabClient(live_server.url, user_token(username="stranger")).run(run["id"])
    assert info.value.status == 404


@pytest.mark.django_db
def test_long_series_charts_come_from_block_summaries_with_exact_peaks(people, client_for, logged):
    api, url = client_for(people["editor"]), f"/api/runs/{logged.id}/metrics/"
    steps = list(range(0, 40_000, 2))  # 20,000 points, every other step
    values = [math.sin(s / 300) for s in steps]
    values[5001], values[12345] = 7.5, -7.5
    for start in range(0, len(steps), 10_000):
        body = {
            "series": [
                {
                    "name": "loss",
                    "steps": steps[start : start + 10_000],
                    "values": values[start : start + 10_000],
                }
            ]
        }
        assert api.post(url, body, format="json").status_code == 200
    chart = api.get(url, {"points": 300}).json()["series"]["loss"]
    assert chart["total"] == 20_000 and len(chart["steps"]) <= 300
    assert chart["steps"][0] == 0 and chart["steps"][-1] == 39_998
    pairs = dict(zip(chart["steps"], chart["values"], strict=True))
    assert pairs[steps[5001]] == 7.5 and pairs[steps[12345]] == -7.5
    # Replacing the spike is seen by the next chart (blocks are recomputed from stored points).
    api.post(url, {"points": [{"name": "loss", "step": steps[5001], "value": 0.0}]}, format="json")
    again = api.get(url, {"points": 300}).json()["series"]["loss"]
    assert 7.5 not in again["values"] and -7.5 in again["values"]


@pytest.mark.django_db
def test_block_summaries_match_the_points_after_random_writes(logged):
    import random

    from layerlab.apps.runs.metrics import metrics_ingest
    from layerlab.apps.runs.models import MetricBlock

    rng = random.Random(0)
    for _ in range(20):
        rows = [("acc", rng.randrange(0, 3000), rng.random()) for _ in range(rng.randrange(1, 300))]
        metrics_ingest(run=logged, rows=rows)
    points = list(MetricPoint.objects.filter(run=logged, name="acc").values_list("step", "value"))
    for block in MetricBlock.objects.filter(run=logged, name="acc"):
        inside = [(s, v) for s, v in points if s // MetricBlock.BLOCK == block.block]
        assert block.count == len(inside)
        assert (block.min_step, block.min_value) == min(inside, key=lambda p: p[1])
        assert (block.max_step, block.max_value) == max(inside, key=lambda p: p[1])
    assert sum(b.count for b in MetricBlock.objects.filter(run=logged)) == len(points)
