"""Reads on datasets, scoped to the projects the user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from layerlab.apps.datasets.models import Dataset
from layerlab.apps.projects.selectors import project_list_visible


def dataset_list_visible(*, user) -> QuerySet[Dataset]:
    """Datasets of every project the user may see."""
    return Dataset.objects.filter(project__in=project_list_visible(user=user)).select_related("project")
