"""Networks API: saved specs with the engine's shape table; invalid specs answer 400."""

from __future__ import annotations

from rest_framework import serializers, viewsets

from layerlab.apps.networks import services
from layerlab.apps.networks.models import Network
from layerlab.apps.networks.selectors import network_list_visible
from layerlab.apps.projects.fields import StrictFieldsMixin, VisibleProjectField
from layerlab.apps.projects.permissions import ProjectScopedMixin


class NetworkSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    project = VisibleProjectField()
    spec = serializers.JSONField()

    class Meta:
        model = Network
        fields = ["id", "project", "name", "description", "spec", "summary", "created_at", "updated_at"]
        read_only_fields = ["id", "summary", "created_at", "updated_at"]
        validators = []

    def validate_spec(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("a network spec is a JSON object (input shape and layers)")
        return value

    def validate_project(self, value):
        if self.instance is not None and value != self.instance.project:
            raise serializers.ValidationError("a network cannot move to another project")
        return value


class NetworkViewSet(ProjectScopedMixin, viewsets.ModelViewSet):
    """Saved networks of the projects you may see."""

    serializer_class = NetworkSerializer
    filterset_fields = ["project", "name"]
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at"]

    def get_queryset(self):
        return network_list_visible(user=self.request.user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.check_create_role(data["project"])
        serializer.instance = services.network_create(
            project=data["project"],
            user=self.request.user,
            name=data["name"],
            spec=data["spec"],
            description=data.get("description", ""),
        )

    def perform_update(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.network_update(
            network=serializer.instance,
            name=data.get("name"),
            spec=data.get("spec"),
            description=data.get("description"),
        )

    def perform_destroy(self, instance):
        services.network_delete(network=instance)
