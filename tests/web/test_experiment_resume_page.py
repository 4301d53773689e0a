"""The experiment page's Resume button: shown to editors of a cancelled lab experiment, which it queues again."""

from __future__ import annotations

import pytest

from layerlab.apps.experiments.models import Experiment
from layerlab.apps.experiments.services import experiment_cancel, experiment_create
from layerlab.apps.runs.models import Run

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG_TEXT = """
name: page-seeds
data: {source: spiral, classes: 3, points_per_class: 10, split: {method: random, val: 0.2, test: 0.2}}
model: {preset: mlp, options: {hidden: [4]}}
train: {epochs: 1, num_threads: 1}
experiment: {kind: seeds, seeds: [0]}
"""


def test_resume_is_an_editors_button_on_a_cancelled_experiment(people, signed_in):
    experiment = experiment_create(project=people["project"], user=people["owner"], config=CONFIG_TEXT)
    page = f"/experiments/{experiment.id}/"
    editor = signed_in("editor")
    assert b">Resume</button>" not in editor.get(page).content  # running: Cancel, not Resume
    experiment_cancel(experiment=experiment)
    assert b">Resume</button>" in editor.get(page).content
    viewer = signed_in("viewer")
    assert b">Resume</button>" not in viewer.get(page).content
    token = viewer.get("/experiments/").cookies["csrftoken"].value
    assert viewer.post(f"{page}resume/", {"csrfmiddlewaretoken": token}).status_code == 403
    stranger = signed_in("stranger")
    token = stranger.get("/experiments/").cookies["csrftoken"].value
    assert stranger.post(f"{page}resume/", {"csrfmiddlewaretoken": token}).status_code == 404
    token = editor.get("/experiments/").cookies["csrftoken"].value
    answer = editor.post(f"{page}resume/", {"csrfmiddlewaretoken": token}, follow=True)
    assert b"resumed: its unfinished trials are queued" in answer.content
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.RUNNING
    assert Run.objects.get(experiment_trial__experiment=experiment).status == Run.Status.QUEUED
