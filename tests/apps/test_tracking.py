"""MLflow's protocol without the client: sign-in (Bearer, basic auth and its throttle), errors, the search parser."""

from __future__ import annotations

import base64

import pytest

from layerlab.apps.tracking.errors import TrackingError
from layerlab.apps.tracking.search import Condition, Order, parse_filter, parse_order

URL = "/api/2.0/mlflow/experiments/get-by-name"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.mark.django_db
def test_bearer_token_and_basic_auth_sign_in(people, client):
    from layerlab.apps.accounts.services import user_token

    token = user_token(username="viewer")
    got = client.get(URL, {"experiment_name": "lab"}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert got.status_code == 200 and got.json()["experiment"]["name"] == "lab"
    got = client.get(
        URL, {"experiment_name": "lab"}, HTTP_AUTHORIZATION=basic("viewer", "viewer-Secret-pass-42")
    )
    assert got.status_code == 200
    ajax_url = URL.replace("/api/", "/ajax-api/")
    ajax = client.get(ajax_url, {"experiment_name": "lab"}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert ajax.status_code == 200 and ajax.json() == got.json()
    got = client.get(URL, {"experiment_name": "lab"})
    assert got.status_code == 401 and got.json()["error_code"] == "UNAUTHENTICATED"


@pytest.mark.django_db
def test_failed_basic_auth_counts_toward_the_login_throttle(people, client, settings):
    settings.LAYERLAB_LOGIN_FAILURES_PER_USER = 3
    for _ in range(3):
        got = client.get(URL, {"experiment_name": "lab"}, HTTP_AUTHORIZATION=basic("owner", "wrong"))
        assert got.status_code == 401
    got = client.get(
        URL, {"experiment_name": "lab"}, HTTP_AUTHORIZATION=basic("owner", "owner-Secret-pass-42")
    )
    assert got.status_code == 429 and got.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert int(got["Retry-After"]) > 0


@pytest.mark.django_db
def test_a_stranger_and_a_missing_experiment_look_the_same(people, client_for):
    api = client_for(people["stranger"])
    hidden = api.get("/api/2.0/mlflow/experiments/get", {"experiment_id": people["project"].id})
    missing = api.get("/api/2.0/mlflow/experiments/get", {"experiment_id": 987654})
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error_code"] == missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    other = api.get("/api/2.0/mlflow/artifacts/list")
    assert other.status_code == 404 and other.json()["error_code"] == "ENDPOINT_NOT_FOUND"


@pytest.mark.django_db
def test_bad_metric_values_are_invalid_parameter_value(people, client_for):
    api = client_for(people["owner"])
    run = api.post("/api/2.0/mlflow/runs/create", {"experiment_id": str(people["project"].id)}, format="json")
    run_id = run.json()["run"]["info"]["run_id"]
    for point in ({"key": "loss", "value": "NaN", "step": 0}, {"key": "bad name!", "value": 1, "step": 0}):
        got = api.post("/api/2.0/mlflow/runs/log-metric", {"run_id": run_id, **point}, format="json")
        assert got.status_code == 400 and got.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_filter_parser_reads_mlflow_syntax():
    text = "metrics.acc > 0.9 and params.`learning rate` = '0.01' AND attributes.status IN ('FINISHED', 'KILLED')"
    assert parse_filter(text) == [
        Condition("metrics", "acc", ">", 0.9),
        Condition("params", "learning rate", "=", "0.01"),
        Condition("attributes", "status", "IN", ("FINISHED", "KILLED")),
    ]
    assert parse_filter("tags.team LIKE 'vis%'") == [Condition("tags", "team", "LIKE", "vis%")]
    assert parse_order(["metrics.acc DESC", "start_time"]) == [
        Order("metrics", "acc", False),
        Order("attributes", "start_time", True),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "metrics.acc ~ 1",
        "metrics.acc > 'x'",
        "foo.bar = 1",
        "params.lr = 0.1 OR params.lr = 0.2",
        "metrics.a >",
    ],
)
def test_filter_parser_refuses_what_it_cannot_answer(text):
    with pytest.raises(TrackingError) as caught:
        parse_filter(text)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
