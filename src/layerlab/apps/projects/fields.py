"""Serializer field for "which project": only projects the caller may see are accepted."""

from __future__ import annotations

from rest_framework import serializers

from layerlab.apps.projects.selectors import project_list_visible


class VisibleProjectField(serializers.PrimaryKeyRelatedField):
    """A project id; one the caller cannot see reads as 'does not exist' (no leak)."""

    def get_queryset(self):
        request = self.context.get("request")
        return project_list_visible(user=request.user if request else None)
