"""The lab's resource caps on runs (epochs, data points, input pixels, parameters) and the API's page cap."""

from __future__ import annotations

import pytest

from layerlab.apps.runs.models import Run

pytestmark = pytest.mark.django_db


def create(api, project, config):
    return api.post("/api/runs/", {"project": project.id, "config": config}, format="json")


@pytest.mark.parametrize(
    ("setting", "cap", "config", "field", "value"),
    [
        ("LAYERLAB_MAX_EPOCHS", 50, {"train": {"epochs": 100}}, "train.epochs", "100"),
        ("LAYERLAB_MAX_DATA_POINTS", 300, {"data": {"source": "spiral", "points_per_class": 200}}, "data.points_per_class", "200"),
        ("LAYERLAB_MAX_INPUT_PIXELS", 10_000, {"data": {"source": "digits", "size": [200, 200]}}, "data.size", "40,000"),
        ("LAYERLAB_MAX_PARAMETERS", 10_000, {"model": {"preset": "mlp", "options": {"hidden": [5000]}}}, "model", "30,003"),
    ],
)  # fmt: skip
def test_a_run_above_a_cap_is_400_naming_field_value_and_cap(
    people, client_for, settings, setting, cap, config, field, value
):
    setattr(settings, setting, cap)
    response = create(client_for(people["editor"]), people["project"], config)
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert detail.startswith(field) and value in detail and f"{cap:,}" in detail and setting in detail
    assert not Run.objects.exists()


def test_the_default_caps_refuse_a_billion_epochs_and_allow_the_usual(people, client_for):
    api = client_for(people["editor"])
    assert create(api, people["project"], {"train": {"epochs": 1_000_000}}).status_code == 400
    assert create(api, people["project"], {"train": {"epochs": 20}}).status_code == 201


def test_the_dashboard_form_and_its_live_check_apply_the_caps(people, settings):
    from layerlab.apps.runs.services import config_check
    from layerlab.core.errors import ConfigError

    settings.LAYERLAB_MAX_EPOCHS = 50
    with pytest.raises(ConfigError, match="LAYERLAB_MAX_EPOCHS"):
        config_check(config={"train": {"epochs": 51}})


def test_list_pages_are_capped_and_huge_offsets_answer(people, client_for, settings):
    settings.LAYERLAB_API_MAX_PAGE_SIZE = 10
    Run.objects.bulk_create(
        Run(project=people["project"], name=f"r{i}", created_by=people["owner"]) for i in range(15)
    )
    api = client_for(people["viewer"])
    page = api.get("/api/runs/?limit=100000").json()
    assert page["count"] == 15 and len(page["results"]) == 10
    assert len(api.get("/api/projects/?limit=100000").json()["results"]) <= 10
    response = api.get("/api/runs/?offset=99999999999999999999999")
    assert response.status_code == 200 and response.json()["results"] == []


@pytest.mark.django_db(transaction=True)
def test_a_worker_stops_a_run_past_the_time_limit_as_failed_and_resumable(people, settings, monkeypatch):
    import itertools

    import torch

    from layerlab.apps.runs import execution, recorder
    from layerlab.apps.runs.services import run_create

    torch.set_num_threads(1)
    settings.LAYERLAB_MAX_RUN_SECONDS = 100
    clock = itertools.count(0, 60)  # every look at the clock is a minute later
    monkeypatch.setattr(recorder.time, "monotonic", lambda: float(next(clock)))
    run = run_create(
        project=people["project"], user=people["owner"], config={"train": {"epochs": 8, "num_threads": 1}}
    )
    assert execution.run_execute(run_id=run.id) == Run.Status.FAILED
    run.refresh_from_db()
    assert "LAYERLAB_MAX_RUN_SECONDS" in run.error and run.epoch < 8
