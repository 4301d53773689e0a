"""A journal entry: dated markdown, in a project, optionally about a run; images uploaded for entries."""

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


class EntryImage(models.Model):
    """A picture for the journal of a project: kept in Django's storage, served only to who may see the project.

    Markdown refers to it as ``/journal/images/<id>/`` (the only images a journal shows are the lab's own).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="journal_images")
    file = models.FileField(max_length=300)  # the storage name, journal/<project>/<uuid>.<ext>
    name = models.CharField(max_length=200, blank=True, default="")  # the uploaded file name, for alt text
    content_type = models.CharField(max_length=50)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name or f"image {self.id}"
