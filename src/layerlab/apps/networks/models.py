"""A saved network: the spec (or the experiment's ``model`` section) and its shape table."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from layerlab.apps.projects.models import Project


class Network(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="networks")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    # The network spec as the engine reads it (input shape + layers).
    spec = models.JSONField(default=dict)
    # The engine's summary: rows (layer, output shape, params, MACs), totals, warnings.
    summary = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="network_unique_name")]

    def __str__(self) -> str:
        return self.name
