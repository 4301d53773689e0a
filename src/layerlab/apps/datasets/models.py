"""A dataset: the ``data`` section of an experiment config, plus what is known about it."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from layerlab.apps.projects.models import Project


class Dataset(models.Model):
    class Kind(models.TextChoices):
        BUILTIN = "builtin"
        PATH = "path"
        UPLOAD = "upload"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The experiment config's ``data`` section (source, path, size, split ...).
    data = models.JSONField(default=dict)
    # What preparing it reported: classes, counts, input shape, skipped files.
    info = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="dataset_unique_name")]

    def __str__(self) -> str:
        return self.name
