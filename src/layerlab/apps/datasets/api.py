"""Datasets API: register a built-in source or a server-side path."""

from __future__ import annotations

from rest_framework import serializers, viewsets

from layerlab.apps.datasets import services
from layerlab.apps.datasets.models import Dataset
from layerlab.apps.datasets.selectors import dataset_list_visible
from layerlab.apps.projects.fields import VisibleProjectField
from layerlab.apps.projects.permissions import ProjectScopedMixin


class DatasetSerializer(serializers.ModelSerializer):
    project = VisibleProjectField()
    data = serializers.JSONField()

    class Meta:
        model = Dataset
        fields = ["id", "project", "name", "kind", "data", "info", "created_at"]
        read_only_fields = ["id", "kind", "info", "created_at"]
        validators = []

    def validate_data(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError('the data section is a JSON object, e.g. {"source": "spiral"}')
        return value


class DatasetViewSet(ProjectScopedMixin, viewsets.ModelViewSet):
    """Datasets of the projects you may see."""

    serializer_class = DatasetSerializer
    filterset_fields = ["project", "kind", "name"]
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return dataset_list_visible(user=self.request.user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.check_create_role(data["project"])
        serializer.instance = services.dataset_register(
            project=data["project"], user=self.request.user, name=data["name"], data=data["data"]
        )

    def perform_update(self, serializer):
        serializer.instance = services.dataset_update(
            dataset=serializer.instance, name=serializer.validated_data.get("name")
        )

    def perform_destroy(self, instance):
        services.dataset_delete(dataset=instance)
