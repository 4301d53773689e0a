"""Runs: tags (create, PATCH, ?tag=), rename, ?filter= on metrics and config, rerun with changes."""

from __future__ import annotations

import pytest

from layerlab.apps.runs import query
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.services import run_create, run_tags_set
from layerlab.apps.runs.tags import tags_clean
from layerlab.core.errors import ConfigError

TINY = {"model": {"preset": "mlp"}, "train": {"epochs": 2}}


def make_run(people, name="r", summary=None, status=Run.Status.SUCCEEDED, tags=(), **train):
    run = run_create(
        project=people["project"],
        user=people["owner"],
        config={**TINY, "train": {"epochs": 2, **train}},
        name=name,
        tags=tags,
    )
    Run.objects.filter(id=run.id).update(status=status, summary=summary or {})
    return Run.objects.get(id=run.id)


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(r["name"] for r in response.json()["results"])


def test_tags_clean_checks_length_charset_count_and_dedupes():
    assert tags_clean(["baseline", "lr:0.1", "baseline", " v2 "]) == ["baseline", "lr:0.1", "v2"]
    assert tags_clean("a,b,,c") == ["a", "b", "c"]
    for bad in (["has space"], ["<b>"], ["x" * 41], ["-lead"], [f"t{i}" for i in range(21)]):
        with pytest.raises(ConfigError):
            tags_clean(bad)


def test_tags_set_at_create_shown_and_filtered(people, client_for):
    api = client_for(people["editor"])
    made = api.post(
        "/api/runs/",
        {"project": people["project"].id, "config": TINY, "name": "a", "tags": ["baseline", "mlp"]},
        format="json",
    )
    assert made.status_code == 201, made.content
    assert made.json()["tags"] == ["baseline", "mlp"]
    make_run(people, name="b", tags=["mlp"])
    make_run(people, name="c")
    assert names(api.get("/api/runs/?tag=mlp")) == ["a", "b"]
    assert names(api.get("/api/runs/?tag=mlp&tag=baseline")) == ["a"]
    assert names(api.get("/api/runs/?tag=nothing")) == []


def test_bad_tags_answer_400_naming_the_tag(people, client_for):
    api = client_for(people["editor"])
    bad = api.post(
        "/api/runs/", {"project": people["project"].id, "config": TINY, "tags": ["no spaces"]}, format="json"
    )
    assert bad.status_code == 400
    assert "no spaces" in bad.json()["detail"]
    assert not Run.objects.exists()


def test_patch_edits_name_and_tags_editors_only(people, client_for):
    run = make_run(people, tags=["old"])
    edited = client_for(people["editor"]).patch(
        f"/api/runs/{run.id}/", {"name": "renamed", "tags": ["new", "best"]}, format="json"
    )
    assert edited.status_code == 200, edited.content
    assert edited.json()["name"] == "renamed" and edited.json()["tags"] == ["new", "best"]
    assert (
        client_for(people["viewer"]).patch(f"/api/runs/{run.id}/", {"tags": []}, format="json").status_code
        == 403
    )
    assert (
        client_for(people["stranger"]).patch(f"/api/runs/{run.id}/", {"tags": []}, format="json").status_code
        == 404
    )
    only_tags = client_for(people["owner"]).patch(f"/api/runs/{run.id}/", {"tags": []}, format="json")
    assert only_tags.json()["tags"] == [] and only_tags.json()["name"] == "renamed"


def test_filter_expression_on_metrics_and_config(people, client_for):
    make_run(people, name="good", summary={"test_accuracy": 0.95, "verdict": "good fit"}, lr=0.001)
    make_run(people, name="fair", summary={"test_accuracy": 0.8}, lr=0.1)
    make_run(people, name="odd", summary={"test_accuracy": "n/a"}, lr=0.001)
    make_run(people, name="none")
    api = client_for(people["viewer"])
    assert names(api.get("/api/runs/", {"filter": "metric.test_accuracy>=0.9"})) == ["good"]
    assert names(api.get("/api/runs/", {"filter": "metric.test_accuracy<0.9"})) == ["fair"]
    assert names(api.get("/api/runs/", {"filter": "config.train.lr=0.001"})) == ["good", "none", "odd"]
    both = "metric.test_accuracy>0.5 and config.train.lr<0.01"
    assert names(api.get("/api/runs/", {"filter": both})) == ["good"]
    assert names(api.get("/api/runs/", {"filter": "metric.verdict='good fit'"})) == ["good"]
    assert names(api.get("/api/runs/", {"filter": "metric.test_accuracy!=0.8"})) == ["good"]
    assert names(api.get("/api/runs/", {"filter": "config.model.preset=mlp"})) == [
        "fair",
        "good",
        "none",
        "odd",
    ]
    # The same conditions as query parameters, as a browser sends them.
    assert names(api.get("/api/runs/?metric.test_accuracy%3E=0.9")) == ["good"]
    assert names(api.get("/api/runs/?metric.test_accuracy%3C0.9")) == ["fair"]
    assert names(api.get("/api/runs/?config.train.lr=0.1")) == ["fair"]


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("test_accuracy>0.9", "cannot read"),
        ("metric.test_accuracy>high", "not a number"),
        ("weights.x=1", "not a field"),
        ("metric.a>1 or metric.b>1", "'or' is not supported"),
        ("metric.a>", "has no value"),
    ],
)
def test_bad_filter_answers_400_with_a_clear_message(people, client_for, expression, words):
    response = client_for(people["viewer"]).get("/api/runs/", {"filter": expression})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "config_error" and words in body["detail"], body


def test_filter_conditions_are_bounded():
    with pytest.raises(ConfigError, match="at most"):
        query.parse_expression(" and ".join(f"metric.m{i}>0" for i in range(11)))


def test_rerun_any_status_with_overrides_and_tags(people, client_for):
    failed = make_run(people, name="base", status=Run.Status.FAILED, tags=["exp1"], lr=0.1)
    api = client_for(people["editor"])
    response = api.post(f"/api/runs/{failed.id}/rerun/", {"overrides": ["train.lr=0.05"]}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["name"] == "base again" and body["tags"] == ["exp1"]
    assert body["config"]["train"]["lr"] == 0.05 and body["config"]["train"]["epochs"] == 2
    assert body["parent"] is None
    changed = api.post(
        f"/api/runs/{failed.id}/rerun/",
        {"name": "bigger", "config": {"train": {"epochs": 3}}, "tags": []},
        format="json",
    ).json()
    assert changed["name"] == "bigger" and changed["tags"] == [] and changed["config"]["train"]["epochs"] == 3
    assert changed["config"]["train"]["lr"] == 0.1
    bad = api.post(f"/api/runs/{failed.id}/rerun/", {"overrides": ["train.nope=1"]}, format="json")
    assert bad.status_code == 400 and "nope" in bad.json()["detail"]
    assert (
        client_for(people["viewer"]).post(f"/api/runs/{failed.id}/rerun/", {}, format="json").status_code
        == 403
    )
    assert (
        client_for(people["stranger"]).post(f"/api/runs/{failed.id}/rerun/", {}, format="json").status_code
        == 404
    )


def test_run_tags_set_replaces_the_list(people):
    run = make_run(people, tags=["a", "b"])
    assert run_tags_set(run=run, tags="b,c") == ["b", "c"]
    assert [t.name for t in run.tags.all()] == ["b", "c"]


def test_filter_keys_named_like_lookups_and_nested_keys_are_plain_keys(people, client_for):
    make_run(people, name="odd", summary={"contains": 2, "exact": "yes", "per_class_accuracy": {"cat": 0.9}})
    make_run(people, name="other", summary={"per_class_accuracy": {"cat": 0.5}})
    api = client_for(people["viewer"])
    assert names(api.get("/api/runs/", {"filter": "metric.contains>1"})) == ["odd"]
    assert names(api.get("/api/runs/", {"filter": "metric.exact=yes"})) == ["odd"]
    assert names(api.get("/api/runs/", {"filter": "metric.regex=1 and metric.has_key!=x"})) == []
    assert names(api.get("/api/runs/", {"filter": "metric.per_class_accuracy.cat>=0.8"})) == ["odd"]
    assert names(api.get("/api/runs/", {"filter": "metric.exact!=yes"})) == []
