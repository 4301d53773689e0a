"""A pipeline (one per project and name) and its stages: state, identity, result and linked run."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from layerlab.apps.projects.models import Project
from layerlab.apps.runs.models import Run


class State(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"  # ran in the latest pipeline run
    SKIPPED = "skipped"  # its output was already there: nothing to do
    FAILED = "failed"
    NOT_RUN = "not_run"  # an input failed


class Pipeline(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pipelines")
    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    error = models.TextField(blank=True, default="")
    spec = models.JSONField(default=dict)  # the checked pipeline (stages, inputs, identities)
    scheduler = models.CharField(max_length=300, blank=True, default="")  # 'local' or luigid's URL

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="pipeline_unique_name")]

    def __str__(self) -> str:
        return self.name


class PipelineStage(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16)
    position = models.PositiveIntegerField(default=0)  # inputs first
    identity = models.CharField(max_length=64)
    requires = models.JSONField(default=list)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "name"], name="pipeline_stage_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.pipeline.name}/{self.name}"
