"""The run page of a reconstruction run: its test MSE beside PCA and the noisy input, and the grid."""

from __future__ import annotations

import json

import pytest
import torch
from django.conf import settings
from django.utils import timezone

from layerlab.apps.runs.models import Run
from layerlab.apps.runs.reconstruction import run_reconstruction, run_reconstruction_callbacks
from layerlab.core import runlayout
from layerlab.inference.reconstruction import write_report
from layerlab.train.config import experiment_from_mapping

pytestmark = pytest.mark.django_db

CONFIG = {
    "data": {"source": "digits", "normalize": "none", "noise": {"kind": "gaussian", "sigma": 0.3}},
    "model": {"preset": "denoising-autoencoder"},
    "train": {"task": "reconstruction", "loss": "mse"},
}
REPORT = {
    "task": "reconstruction", "denoising": True, "test_mse": 0.0168, "pca_mse": 0.0026, "code_size": 32,
    "noisy_input_mse": 0.0521, "pca_noisy_mse": 0.0317, "test_examples": 359,
}  # fmt: skip


@pytest.fixture
def signed_in(people):
    from django.test import Client

    def make(name: str):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(people[name])
        return browser

    return make


@pytest.fixture
def autoencoder_run(people):
    run = Run.objects.create(
        project=people["project"], name="dae", status=Run.Status.SUCCEEDED,
        config=experiment_from_mapping(CONFIG).to_dict(), created_by=people["owner"], finished_at=timezone.now(),
    )  # fmt: skip
    run_dir = settings.LAYERLAB_RUNS_DIR / str(run.id)
    run_dir.mkdir(parents=True)
    rows = {
        "input": torch.rand(3, 1, 8, 8),
        "noisy": torch.rand(3, 1, 8, 8),
        "reconstruction": torch.rand(3, 1, 8, 8),
    }
    write_report(run_dir, REPORT, rows)
    return run


def test_the_run_page_shows_the_figures_and_the_grid_to_viewers_only(signed_in, autoencoder_run):
    page = signed_in("viewer").get(f"/runs/{autoencoder_run.id}/").content.decode()
    assert "Reconstructions (test split)" in page and "PCA, 32 components" in page
    assert "0.0168" in page and "the noisy input itself" in page and "0.0521" in page
    assert 'src="data:image/png;base64,' in page
    assert signed_in("stranger").get(f"/runs/{autoencoder_run.id}/").status_code == 404


def test_a_run_without_a_report_or_of_another_task_has_no_section(autoencoder_run):
    (settings.LAYERLAB_RUNS_DIR / str(autoencoder_run.id) / runlayout.RECONSTRUCTION_REPORT).write_text("[1]")
    assert run_reconstruction(autoencoder_run) is None  # not a report: nothing shown, no error
    (settings.LAYERLAB_RUNS_DIR / str(autoencoder_run.id) / runlayout.RECONSTRUCTION_REPORT).write_text(
        json.dumps(REPORT)
    )
    assert run_reconstruction(autoencoder_run)["report"]["test_mse"] == 0.0168
    assert len(run_reconstruction_callbacks(autoencoder_run)) == 1
    from layerlab.apps.runs.execution import run_extra_callbacks
    from layerlab.inference.reconstruction import ReconstructionReport

    # registered when the runs app is ready: the worker's training writes the report
    assert any(isinstance(cb, ReconstructionReport) for cb in run_extra_callbacks(autoencoder_run))
    autoencoder_run.config = {**autoencoder_run.config, "train": {"task": "classification"}}
    assert run_reconstruction(autoencoder_run) is None and run_reconstruction_callbacks(autoencoder_run) == []
