"""Datasets API: register a built-in source or a server-side path."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from layerlab.apps.datasets import services
from layerlab.apps.datasets.access import data_section_public
from layerlab.apps.datasets.models import Dataset
from layerlab.apps.datasets.samples import dataset_sample_grid
from layerlab.apps.datasets.selectors import dataset_list_visible
from layerlab.apps.datasets.uploads import dataset_upload
from layerlab.apps.projects.fields import StrictFieldsMixin, VisibleProjectField
from layerlab.apps.projects.permissions import ProjectScopedMixin


class DatasetSerializer(StrictFieldsMixin, serializers.ModelSerializer):
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
        unchanged = (
            (self.instance.data, data_section_public(self.instance.data, dataset=self.instance))
            if self.instance
            else ()
        )
        if self.instance is not None and value not in unchanged:
            # Runs refer to a dataset by what it was; a different data section is a different dataset.
            raise serializers.ValidationError(
                "the data section of a dataset cannot change; register a new one"
            )
        return value

    def to_representation(self, dataset):
        data = super().to_representation(dataset)
        data["data"] = data_section_public(dataset.data, dataset=dataset)  # an upload by name, not its path
        data["info"] = services.dataset_info_public(dataset)
        return data

    def validate_project(self, value):
        if self.instance is not None and value != self.instance.project:
            raise serializers.ValidationError("a dataset cannot move to another project")
        return value


class UploadSerializer(StrictFieldsMixin, serializers.Serializer):
    project = VisibleProjectField()
    name = serializers.CharField(max_length=200)
    file = serializers.FileField()
    options = serializers.JSONField(
        required=False, default=dict, help_text="more of the data section: size, split ..."
    )

    def validate_options(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("options is a JSON object (size, channels, split ...)")
        if {"source", "path"} & set(value):
            raise serializers.ValidationError("source and path come from the upload")
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

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={201: DatasetSerializer})
    @action(detail=False, methods=["post"])  # multipart: the default parsers enforce the size limit
    def upload(self, request):
        """Upload a zip of an image folder (one sub-folder per class), an .npz or a .csv."""
        body = UploadSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        self.check_create_role(data["project"])
        dataset = dataset_upload(
            project=data["project"],
            user=request.user,
            name=data["name"],
            upload=data["file"],
            options=data["options"],
        )
        return Response(
            DatasetSerializer(dataset, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        parameters=[OpenApiParameter("per_class", int, description="images per class (1-32, default 6)")],
        responses={(200, "image/png"): bytes},
    )
    @action(detail=True, methods=["get"])
    def samples(self, request, pk=None):
        """A PNG grid of sample images, one row per class."""
        dataset = self.get_object()
        per_class = serializers.IntegerField(min_value=1, max_value=32).run_validation(
            request.query_params.get("per_class", 6)
        )
        return HttpResponse(
            dataset_sample_grid(dataset=dataset, per_class=per_class), content_type="image/png"
        )
