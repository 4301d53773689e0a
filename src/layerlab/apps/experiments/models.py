"""An experiment (a research kind over a base config: research/) and its trials, each an ordinary run."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from layerlab.apps.projects.models import Project
from layerlab.apps.runs.models import Run


class Experiment(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"  # the plan or the report could not be made (the error says why)
        CANCELLED = "cancelled"

    class Origin(models.TextChoices):
        SERVER = "server"  # its trials queue on the lab's workers
        CLI = "cli"  # `layerlab experiment run` trained it on one machine and recorded it here

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=200, blank=True, default="")
    kind = models.CharField(max_length=64)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.SERVER)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    # The whole checked config (base run config + the experiment section) and the kind's options.
    config = models.JSONField(default=dict)
    options = models.JSONField(default=dict)
    fingerprint = models.CharField(max_length=32, blank=True, default="")
    # The report document (research/report.py: table, findings, plots, reference, configs, seeds, time).
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"experiment {self.pk}"

    @property
    def is_running(self) -> bool:
        return self.status == self.Status.RUNNING


class ExperimentTrial(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"  # its run is queued or training (a probe: its job is queued or running)
        COMPLETED = "completed"
        FAILED = "failed"
        SKIPPED = "skipped"  # a trial it needed did not complete
        CANCELLED = "cancelled"

    FINISHED = (Status.COMPLETED, Status.FAILED, Status.SKIPPED, Status.CANCELLED)

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="trial_rows")
    key = models.CharField(max_length=200)  # the kind's stable key, e.g. "fc/d=100/seed=1"
    labels = models.JSONField(default=dict)
    probe = models.CharField(max_length=64, blank=True, default="")  # empty: a training run
    run = models.OneToOneField(Run, null=True, on_delete=models.SET_NULL, related_name="experiment_trial")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    seconds = models.FloatField(default=0.0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="experiment_trial_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} of {self.experiment}"
