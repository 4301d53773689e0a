"""The misclassified gallery: a confusion-matrix cell's test examples, permission-checked and bounded."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from django.conf import settings
from django.utils import timezone

from layerlab.apps.runs.gallery import MAX_PER_CELL
from layerlab.apps.runs.models import Run
from layerlab.data.prepare import held_out_examples
from layerlab.train.config import experiment_from_mapping
from layerlab.train.testpredictions import predictions_write

pytestmark = pytest.mark.django_db

CONFIG = {
    "seed": 2,
    "data": {"source": "digits", "limit": 400},
    "model": {"preset": "mlp"},
    "train": {"epochs": 1},
}


@pytest.fixture
def signed_in(people):
    """``signed_in(name)`` -> a dashboard client with that user's session."""
    from django.test import Client

    def make(name: str):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(people[name])
        return browser

    return make


@pytest.fixture
def digits_run(people):
    """A succeeded run whose recorded predictions call every test 3 an 8 (and get the rest right)."""
    cfg = experiment_from_mapping(CONFIG)
    run = Run.objects.create(
        project=people["project"], name="digits", status=Run.Status.SUCCEEDED, config=cfg.to_dict(),
        created_by=people["owner"], finished_at=timezone.now(),
    )  # fmt: skip
    everything = held_out_examples(cfg.data, seed=cfg.seed, positions=range(10_000))
    true = everything.y
    predicted = np.where(true == 3, 8, true)
    matrix = [[int(((true == t) & (predicted == p)).sum()) for p in range(10)] for t in range(10)]
    run.summary = {"classes": [str(i) for i in range(10)], "confusion_matrix": matrix, "test_accuracy": 0.9}
    run.save()
    run_dir = settings.LAYERLAB_RUNS_DIR / str(run.id)
    run_dir.mkdir(parents=True)
    predictions_write(run_dir, true, predicted)
    run.threes = int((true == 3).sum())
    return run


def test_a_cell_shows_its_test_images_as_png_thumbnails(people, client_for, digits_run):
    response = client_for(people["viewer"]).get(
        f"/api/runs/{digits_run.id}/misclassified/?true=3&predicted=8"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["true"], body["predicted"], body["total"]) == ("3", "8", digits_run.threes)
    assert 0 < len(body["items"]) == min(digits_run.threes, MAX_PER_CELL)
    from PIL import Image

    header, data = body["items"][0]["image"].split(",", 1)
    assert header == "data:image/png;base64"
    assert Image.open(io.BytesIO(base64.b64decode(data))).size == (64, 64)
    empty = client_for(people["viewer"]).get(f"/api/runs/{digits_run.id}/misclassified/?true=3&predicted=3")
    assert empty.json()["total"] == 0 and empty.json()["items"] == []


def test_the_dashboard_cells_open_the_gallery_for_viewers_and_404_for_strangers(signed_in, digits_run):
    viewer = signed_in("viewer")
    page = viewer.get(f"/runs/{digits_run.id}/").content.decode()
    assert 'data-true="3" data-predicted="8"' in page and "web/gallery.js" in page
    cell = viewer.get(f"/runs/{digits_run.id}/misclassified/", {"true": 3, "predicted": 8})
    assert cell.status_code == 200 and cell.json()["total"] == digits_run.threes
    assert (
        signed_in("stranger").get(f"/runs/{digits_run.id}/misclassified/?true=3&predicted=8").status_code
        == 404
    )
    bad = viewer.get(f"/runs/{digits_run.id}/misclassified/?true=12&predicted=0")
    assert bad.status_code == 400 and "class index from 0 to 9" in bad.json()["detail"]
    assert viewer.get(f"/runs/{digits_run.id}/misclassified/?true=x").status_code == 400


def test_a_run_without_recorded_predictions_has_plain_cells_and_a_clear_400(
    people, client_for, signed_in, digits_run
):
    (settings.LAYERLAB_RUNS_DIR / str(digits_run.id) / "test_predictions.npz").unlink()
    assert "data-true=" not in signed_in("viewer").get(f"/runs/{digits_run.id}/").content.decode()
    response = client_for(people["viewer"]).get(
        f"/api/runs/{digits_run.id}/misclassified/?true=3&predicted=8"
    )
    assert response.status_code == 400
    assert "no per-example test predictions" in response.json()["detail"]


def test_changed_data_is_refused_not_shown_wrong(people, client_for, digits_run):
    config = dict(digits_run.config)
    config["seed"] = 99  # another split: the recorded labels no longer line up
    Run.objects.filter(id=digits_run.id).update(config=config)
    response = client_for(people["viewer"]).get(
        f"/api/runs/{digits_run.id}/misclassified/?true=3&predicted=8"
    )
    assert response.status_code == 400 and "data changed" in response.json()["detail"]
