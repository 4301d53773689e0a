"""Reads on networks, scoped to the projects the user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from layerlab.apps.networks.models import Network
from layerlab.apps.projects.selectors import project_list_visible


def network_list_visible(*, user) -> QuerySet[Network]:
    """Networks of every project the user may see."""
    return Network.objects.filter(project__in=project_list_visible(user=user)).select_related("project")
