"""Fixtures of the dashboard tests: signed-in Django test clients and a finished run with metrics."""

from __future__ import annotations

import pytest


@pytest.fixture
def signed_in(client, people):
    """``signed_in(name)`` -> a Django test client with that user's session (CSRF checks on)."""
    from django.test import Client

    def make(name: str):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(people[name])
        return browser

    return make


@pytest.fixture
def finished_run(people):
    """A succeeded run in the shared project, with curves, a confusion matrix and a checkpoint file."""
    from django.utils import timezone

    from layerlab.apps.runs.models import Checkpoint, MetricPoint, Run

    now = timezone.now()
    run = Run.objects.create(
        project=people["project"],
        name="spiral <b>bold</b>",
        status=Run.Status.SUCCEEDED,
        config={"data": {"source": "spiral"}, "model": {"preset": "mlp"}, "train": {"epochs": 3, "lr": 0.01}},
        epochs=3,
        epoch=3,
        started_at=now,
        finished_at=now,
        created_by=people["owner"],
        summary={
            "train_accuracy": 0.9,
            "val_accuracy": 0.8,
            "test_accuracy": 0.75,
            "test_loss": 0.5,
            "classes": ["a", "b"],
            "confusion_matrix": [[5, 1], [2, 4]],
            "per_class_accuracy": {"a": 0.83, "b": 0.67},
        },  # fmt: skip
        verdict="train 90.0% vs test 75.0%: overfitting, gap 15 points",
    )
    # Model rows, not the ingestion service: these tests are about pages, not about ingestion.
    MetricPoint.objects.bulk_create(
        MetricPoint(run=run, name=name, step=step, value=value)
        for step in (1, 2, 3)
        for name, value in (
            ("train_loss", 1 / step),
            ("val_loss", 1.2 / step),
            ("train_accuracy", 0.3 * step),
        )
    )
    from django.conf import settings

    ckpt = settings.LAYERLAB_RUNS_DIR / str(run.id) / "checkpoints" / "epoch-3.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"weights")
    run.run_dir = str(ckpt.parent.parent)
    run.save()
    Checkpoint.objects.create(run=run, epoch=3, path=str(ckpt))
    return run
