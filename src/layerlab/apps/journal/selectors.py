"""Reads on the journal, scoped to the projects the user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from layerlab.apps.journal.models import Entry, EntryImage
from layerlab.apps.projects.selectors import project_list_visible


def entry_list_visible(*, user) -> QuerySet[Entry]:
    """Journal entries of every project the user may see."""
    return Entry.objects.filter(project__in=project_list_visible(user=user)).select_related("project", "run")


def entry_image_list_visible(*, user) -> QuerySet[EntryImage]:
    """Journal images of every project the user may see (others do not exist for them)."""
    return EntryImage.objects.filter(project__in=project_list_visible(user=user))
