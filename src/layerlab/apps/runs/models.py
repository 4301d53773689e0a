"""A run, its metric points (one per series and step) and its checkpoints."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from layerlab.apps.datasets.models import Dataset
from layerlab.apps.networks.models import Network
from layerlab.apps.projects.models import Project


class Run(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        PRUNED = "pruned"  # a sweep's trial stopped early by its pruner (apps.sweeps)

    class Origin(models.TextChoices):
        SERVER = "server"  # trained by a worker
        CLIENT = "client"  # trained elsewhere, logged through the API (layerlab.client)
        CLI = "cli"  # trained by `layerlab train` on a machine sharing the store; polls cancel like a worker

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.PRUNED)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=200, blank=True, default="")
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.SERVER)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # The resolved experiment config (seed, data, model, train), as JSON.
    config = models.JSONField(default=dict)
    network = models.ForeignKey(
        Network, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    epoch = models.PositiveIntegerField(default=0)  # last finished epoch
    epochs = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    verdict = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    # Executions started (a worker killed mid-run makes another, from the last checkpoint).
    attempts = models.PositiveIntegerField(default=0)
    # Fencing token: incremented by every claim. An execution writes to the run only while the
    # run is running under its own lease, so a worker paused past its heartbeat writes nothing more.
    lease = models.PositiveBigIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True, default="")  # host:pid of the executing worker
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    run_dir = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        # The runs list: a project's runs newest first, filtered by status, sorted by start or creation.
        indexes = [
            models.Index(fields=["project", "-created_at", "-id"], name="run_project_created"),
            models.Index(fields=["status", "-created_at", "-id"], name="run_status_created"),
            models.Index(fields=["status", "-started_at"], name="run_status_started"),
        ]

    def __str__(self) -> str:
        return self.name or f"run {self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class RunTag(models.Model):
    """One short label of a run (``baseline``, ``lr-sweep``): a row each, so ``?tag=`` is a join, on any database."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=40, db_index=True)

    class Meta:
        ordering = ["id"]  # the order they were given
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="run_tag_unique")]

    def __str__(self) -> str:
        return self.name


class MetricPoint(models.Model):
    """One value of one series (``train_loss``, ``val_accuracy`` ...) at one step."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_points")
    name = models.CharField(max_length=100)
    step = models.BigIntegerField()
    value = models.FloatField()

    class Meta:
        ordering = ["name", "step"]
        # One point per (run, series, step): re-sending a point replaces it, so a resumed
        # run or a retried batch never duplicates.
        constraints = [models.UniqueConstraint(fields=["run", "name", "step"], name="metric_unique_step")]


class MetricBlock(models.Model):
    """Summary of ``BLOCK`` consecutive steps of one series: count, and where its min and max are.

    Kept in step with MetricPoint at every write, so a chart of a long series reads a few
    thousand blocks instead of every point, and still shows the exact peaks.
    """

    BLOCK = 64

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_blocks")
    name = models.CharField(max_length=100)
    block = models.BigIntegerField()  # step // BLOCK
    count = models.PositiveIntegerField()
    min_step = models.BigIntegerField()
    min_value = models.FloatField()
    max_step = models.BigIntegerField()
    max_value = models.FloatField()

    class Meta:
        ordering = ["name", "block"]
        constraints = [models.UniqueConstraint(fields=["run", "name", "block"], name="metric_block_unique")]


class Checkpoint(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="checkpoints")
    epoch = models.PositiveIntegerField()
    path = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["epoch", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "path"], name="checkpoint_unique_path")]
