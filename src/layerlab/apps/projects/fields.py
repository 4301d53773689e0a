"""Serializer pieces shared by the apps: the visible-project field, and rejecting unknown fields."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from layerlab.apps.projects.selectors import project_list_visible


@extend_schema_field(OpenApiTypes.INT)
class VisibleProjectField(serializers.PrimaryKeyRelatedField):
    """A project id; one the caller cannot see reads as 'does not exist' (no leak)."""

    def get_queryset(self):
        request = self.context.get("request")
        return project_list_visible(user=request.user if request else None)


# Sent by the browsable API's HTML forms; not a field of any resource.
FORM_KEYS = {"csrfmiddlewaretoken", "_content_type", "_content", "_method"}


class StrictFieldsMixin:
    """Reject keys the serializer does not know (DRF silently drops them), naming each one."""

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields) - FORM_KEYS)
            if unknown:
                known = ", ".join(name for name, field in self.fields.items() if not field.read_only)
                raise serializers.ValidationError(
                    {name: [f"unknown field; known fields: {known}"] for name in unknown}
                )
        return super().to_internal_value(data)
