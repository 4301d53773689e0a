"""A sweep (one Optuna study over a base config) and its trials, each an ordinary run."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from layerlab.apps.projects.models import Project
from layerlab.apps.runs.models import Run


class Sweep(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        FINISHED = "finished"
        CANCELLED = "cancelled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sweeps")
    name = models.CharField(max_length=200, blank=True, default="")
    # The Optuna study in the lab's Optuna storage (``sweeps.study``), unique across the lab.
    study_name = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    # The checked ``sweep:`` section (``SweepSpec.to_dict``) and the base experiment config.
    spec = models.JSONField(default=dict)
    config = models.JSONField(default=dict)
    method = models.CharField(max_length=16)
    metric = models.CharField(max_length=100)
    goal = models.CharField(max_length=16)
    trials = models.PositiveIntegerField()
    parallel = models.PositiveIntegerField(default=1)
    pruner = models.CharField(max_length=16, default="none")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Importances (Optuna's evaluator) computed on demand, kept until the next trial is told.
    importances = models.JSONField(default=dict, blank=True)
    importances_told = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"sweep {self.pk}"


class SweepTrial(models.Model):
    class State(models.TextChoices):
        RUNNING = "running"  # its run is queued or training
        COMPLETE = "complete"
        PRUNED = "pruned"
        FAILED = "failed"

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="trial_rows")
    number = models.PositiveIntegerField()  # Optuna's trial number in the study
    trial_id = models.BigIntegerField()  # Optuna's trial id in its storage
    run = models.OneToOneField(Run, null=True, on_delete=models.SET_NULL, related_name="sweep_trial")
    params = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING, db_index=True)
    value = models.FloatField(null=True, blank=True)
    epochs = models.PositiveIntegerField(default=0)  # epochs trained (pruned trials stop early)
    created_at = models.DateTimeField(auto_now_add=True)
    told_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["sweep", "number"], name="sweep_trial_unique_number")]

    def __str__(self) -> str:
        return f"trial {self.number} of {self.sweep}"
