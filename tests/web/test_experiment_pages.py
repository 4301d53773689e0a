"""The experiment pages: the list with its form (paste or upload a config), one experiment's page with the
table, findings, PNG plots and chart data, cancel/delete by role, 404 for strangers."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from layerlab.apps.experiments.models import Experiment
from layerlab.apps.experiments.services import experiment_create
from layerlab.apps.runs import execution
from layerlab.apps.runs.models import Run

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG_TEXT = """
name: page-seeds
data: {source: spiral, classes: 3, points_per_class: 10, split: {method: random, val: 0.2, test: 0.2}}
model: {preset: mlp, options: {hidden: [4]}}
train: {epochs: 1, num_threads: 1}
experiment: {kind: seeds, seeds: [0]}
"""


def finished(people) -> Experiment:
    experiment = experiment_create(project=people["project"], user=people["owner"], config=CONFIG_TEXT)
    for run in Run.objects.filter(experiment_trial__experiment=experiment):
        execution.run_execute(run_id=run.id)
    experiment.refresh_from_db()
    assert experiment.status == "finished"
    return experiment


def test_the_experiment_page_shows_table_findings_plots_and_trial_links(people, signed_in):
    experiment = finished(people)
    viewer = signed_in("viewer")
    text = viewer.get(f"/experiments/{experiment.id}/").content.decode()
    assert 'id="results"' in text and "test_accuracy" in text and 'id="findings"' in text
    assert 'id="experiment-charts"' in text and "web/experiment.js" in text and "<script>" not in text
    run_id = experiment.trial_rows.get().run_id
    assert f'href="/runs/{run_id}/"' in text
    run_page = viewer.get(f"/runs/{run_id}/").content.decode()
    assert 'id="run-experiment"' in run_page and f'href="/experiments/{experiment.id}/"' in run_page
    png = viewer.get(f"/experiments/{experiment.id}/plots/per_seed.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert viewer.get(f"/experiments/{experiment.id}/plots/other.png").status_code == 404
    assert 'href="/experiments/"' in viewer.get("/experiments/").content.decode()  # the nav entry
    assert "Delete" not in text  # a viewer may not delete
    stranger = signed_in("stranger")
    assert stranger.get(f"/experiments/{experiment.id}/").status_code == 404
    assert stranger.get(f"/experiments/{experiment.id}/plots/per_seed.png").status_code == 404
    assert stranger.post(f"/experiments/{experiment.id}/delete/").status_code == 403  # CSRF first


def test_the_form_creates_an_experiment_from_pasted_or_uploaded_text(people, signed_in):
    editor = signed_in("editor")
    page = editor.get("/experiments/")
    token = page.cookies["csrftoken"].value
    answer = editor.post(
        "/experiments/",
        {"project": people["project"].id, "config": CONFIG_TEXT, "csrfmiddlewaretoken": token},
    )
    assert answer.status_code == 302
    experiment = Experiment.objects.get()
    assert answer["Location"] == f"/experiments/{experiment.id}/" and experiment.kind == "seeds"
    upload = SimpleUploadedFile("exp.yaml", CONFIG_TEXT.encode())
    answer = editor.post(
        "/experiments/",
        {"project": people["project"].id, "file": upload, "name": "uploaded", "csrfmiddlewaretoken": token},
    )
    assert answer.status_code == 302 and Experiment.objects.filter(name="uploaded").exists()


def test_a_bad_config_is_one_line_on_the_form_and_creates_nothing(people, signed_in):
    editor = signed_in("editor")
    token = editor.get("/experiments/").cookies["csrftoken"].value
    bad = CONFIG_TEXT.replace("kind: seeds", "kind: seedz")
    answer = editor.post(
        "/experiments/", {"project": people["project"].id, "config": bad, "csrfmiddlewaretoken": token}
    )
    assert answer.status_code == 200
    assert (
        "unknown experiment kind &#x27;seedz&#x27;; did you mean &#x27;seeds&#x27;?"
        in answer.content.decode()
    )
    assert not Experiment.objects.exists()


def test_cancel_needs_an_editor_and_delete_the_owner(people, signed_in):
    experiment = experiment_create(project=people["project"], user=people["owner"], config=CONFIG_TEXT)
    viewer = signed_in("viewer")
    token = viewer.get("/experiments/").cookies["csrftoken"].value
    assert (
        viewer.post(f"/experiments/{experiment.id}/cancel/", {"csrfmiddlewaretoken": token}).status_code
        == 403
    )
    editor = signed_in("editor")
    token = editor.get("/experiments/").cookies["csrftoken"].value
    editor.post(f"/experiments/{experiment.id}/cancel/", {"csrfmiddlewaretoken": token})
    experiment.refresh_from_db()
    assert experiment.status == "cancelled"
    assert (
        editor.post(f"/experiments/{experiment.id}/delete/", {"csrfmiddlewaretoken": token}).status_code
        == 403
    )
    owner = signed_in("owner")
    token = owner.get("/experiments/").cookies["csrftoken"].value
    owner.post(f"/experiments/{experiment.id}/delete/", {"csrfmiddlewaretoken": token})
    assert not Experiment.objects.exists()
