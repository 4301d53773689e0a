"""Reads on pipelines, scoped to the projects a user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from layerlab.apps.pipelines.models import Pipeline
from layerlab.apps.projects.selectors import project_list_visible


def pipeline_list_visible(*, user) -> QuerySet[Pipeline]:
    return Pipeline.objects.filter(project__in=project_list_visible(user=user)).select_related("project")
