"""A client run's summary: finish stores only what fits the schema; the run page survives old bad rows."""

from __future__ import annotations

import pytest
from django.test import Client

from layerlab.apps.runs.models import Run
from layerlab.apps.runs.summary import summary_displayable, summary_problems

pytestmark = pytest.mark.django_db

MALFORMED = [
    ({"confusion_matrix": [1, 2]}, "confusion_matrix"),
    ({"confusion_matrix": [[1, 2], [3]]}, "confusion_matrix"),
    ({"confusion_matrix": [[1, -2], [3, 4]]}, "confusion_matrix"),
    ({"classes": ["a", "b", "c"], "confusion_matrix": [[1, 0], [0, 1]]}, "confusion_matrix"),
    ({"per_class_accuracy": [0.5, 0.7]}, "per_class_accuracy"),
    ({"per_class_accuracy": {"a": "high"}}, "per_class_accuracy"),
    ({"classes": 5}, "classes"),
    ({"test_accuracy": 91.5}, "test_accuracy"),
    ({"test_loss": "low"}, "test_loss"),
    ({"epochs": -1}, "epochs"),
    ({"my_metric": {"nested": [1]}}, "my_metric"),
]


@pytest.fixture
def client_run(people, client_for):
    def make():
        response = client_for(people["editor"]).post(
            "/api/runs/",
            {"project": people["project"].id, "origin": "client", "name": "logged"},
            format="json",
        )
        assert response.status_code == 201, response.content
        return response.json()["id"]

    return make


@pytest.mark.parametrize(("summary", "key"), MALFORMED)
def test_finish_refuses_a_malformed_summary_naming_the_key(people, client_for, client_run, summary, key):
    run_id = client_run()
    response = client_for(people["editor"]).post(
        f"/api/runs/{run_id}/finish/", {"status": "succeeded", "summary": summary}, format="json"
    )
    assert response.status_code == 400, response.content
    assert key in response.json()["detail"]
    assert Run.objects.get(id=run_id).status == Run.Status.RUNNING


def test_finish_keeps_a_well_formed_summary_and_extra_scalars(people, client_for, client_run):
    run_id = client_run()
    summary = {
        "classes": ["cat", "dog"],
        "confusion_matrix": [[5, 1], [0, 6]],
        "per_class_accuracy": {"cat": 0.83, "dog": 1.0},
        "test_accuracy": 0.9,
        "test_loss": 0.3,
        "verdict": "good fit",
        "best_f1": 0.88,
    }
    response = client_for(people["editor"]).post(
        f"/api/runs/{run_id}/finish/", {"status": "succeeded", "summary": summary}, format="json"
    )
    assert response.status_code == 200, response.content
    assert Run.objects.get(id=run_id).summary == summary


@pytest.mark.parametrize(("summary", "key"), MALFORMED)
def test_the_run_page_shows_old_bad_rows_without_a_500(people, client_run, summary, key):
    run_id = client_run()
    Run.objects.filter(id=run_id).update(
        status=Run.Status.SUCCEEDED, summary={**summary, "test_accuracy": 0.5}
    )
    browser = Client()
    browser.force_login(people["viewer"])
    response = browser.get(f"/runs/{run_id}/")
    assert response.status_code == 200
    assert key not in summary_displayable(Run.objects.get(id=run_id).summary) or key == "test_accuracy"


def test_the_engine_summary_fits_the_schema():
    engine = {
        "status": "succeeded", "run_dir": "/x", "epochs": 2, "epochs_planned": 2, "train_loss": 0.1,
        "train_accuracy": 1.0, "val_loss": None, "val_accuracy": None, "test_loss": 0.2, "test_accuracy": 0.5,
        "evaluated_weights": "best", "best_epoch": 1, "best_metric": 0.3, "monitor": "val_loss",
        "weights_sha256": "ab", "best_weights_sha256": "cd", "train_seconds": 1.5, "seconds": 2.0,
        "device": "cpu", "parameters": 10, "trainable_parameters": 10, "frozen": [], "classes": ["a", "b"],
        "init_from": None, "data_report": {"skipped": []}, "warnings": [],
        "per_class_accuracy": {"a": 0.5, "b": None}, "confusion_matrix": [[1, 1], [0, 0]], "verdict": "ok",
    }  # fmt: skip
    assert summary_problems(engine) == {}
