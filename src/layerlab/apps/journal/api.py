"""Journal API: dated markdown entries, linked to runs, editable by project editors; image uploads."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from layerlab.apps.journal import services
from layerlab.apps.journal.models import Entry
from layerlab.apps.journal.selectors import entry_list_visible
from layerlab.apps.projects.fields import StrictFieldsMixin, VisibleProjectField
from layerlab.apps.projects.permissions import ProjectScopedMixin
from layerlab.apps.runs.selectors import run_list_visible


class VisibleRunField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return run_list_visible(user=self.context["request"].user)


class EntrySerializer(StrictFieldsMixin, serializers.ModelSerializer):
    project = VisibleProjectField()
    run = VisibleRunField(required=False, allow_null=True)
    author = serializers.CharField(source="author.username", read_only=True, default=None)

    class Meta:
        model = Entry
        fields = [
            "id",
            "project",
            "run",
            "date",
            "title",
            "body",
            "automatic",
            "author",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "automatic", "author", "created_at", "updated_at"]

    def validate_project(self, value):
        if self.instance is not None and value != self.instance.project:
            raise serializers.ValidationError("an entry cannot move to another project")
        return value


class ImageUploadSerializer(StrictFieldsMixin, serializers.Serializer):
    project = VisibleProjectField()
    file = serializers.FileField()


class ImageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    markdown = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class EntryViewSet(ProjectScopedMixin, viewsets.ModelViewSet):
    """The lab journal of the projects you may see."""

    serializer_class = EntrySerializer
    filterset_fields = ["project", "run", "date", "automatic"]
    search_fields = ["title", "body"]
    ordering_fields = ["date", "created_at", "title"]

    def get_queryset(self):
        return entry_list_visible(user=self.request.user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.check_create_role(data["project"])
        serializer.instance = services.entry_create(
            project=data["project"],
            author=self.request.user,
            title=data["title"],
            body=data.get("body", ""),
            run=data.get("run"),
            date=data.get("date"),
        )

    def perform_update(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.entry_update(
            entry=serializer.instance,
            title=data.get("title"),
            body=data.get("body"),
            date=data.get("date"),
            run=data.get("run"),
        )

    @extend_schema(request={"multipart/form-data": ImageUploadSerializer}, responses={201: ImageSerializer})
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def images(self, request):
        """Upload a PNG, JPEG, GIF or WebP for a project's journal (editor); answers its markdown.

        The image is served at ``/journal/images/<id>/`` to people who may see the project.
        """
        body = ImageUploadSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        project = body.validated_data["project"]
        self.check_create_role(project)
        image = services.entry_image_add(
            project=project, user=request.user, upload=body.validated_data["file"]
        )
        url = f"/journal/images/{image.id}/"
        return Response(
            {"id": image.id, "url": url, "markdown": services.entry_image_markdown(image),
             "width": image.width, "height": image.height},
            status=status.HTTP_201_CREATED,
        )  # fmt: skip
