"""A journal entry: dated markdown, in a project, optionally about a run."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from layerlab.apps.projects.models import Project
from layerlab.apps.runs.models import Run


class Entry(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="journal_entries")
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="journal_entries"
    )
    date = models.DateField(default=timezone.localdate)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True, default="")
    automatic = models.BooleanField(default=False)  # written by the server when the run finished
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "-id"]
        verbose_name_plural = "entries"

    def __str__(self) -> str:
        return self.title
