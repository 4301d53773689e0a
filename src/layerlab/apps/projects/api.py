"""Projects API: CRUD, sharing with groups, the caller's role."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from layerlab.apps.projects import services
from layerlab.apps.projects.fields import StrictFieldsMixin
from layerlab.apps.projects.models import Project, Role
from layerlab.apps.projects.permissions import ProjectScopedMixin
from layerlab.apps.projects.selectors import project_list_visible, project_role


class ShareSerializer(StrictFieldsMixin, serializers.Serializer):
    group = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=["viewer", "editor"], required=False, default="viewer")


class ProjectSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    shares = serializers.SerializerMethodField()
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "description", "owner", "shares", "my_role", "created_at", "updated_at"]
        read_only_fields = ["id", "owner", "created_at", "updated_at"]
        # Uniqueness is checked by the service (per owner), not by a DRF validator.
        validators = []

    def get_shares(self, project) -> list[dict]:
        return [{"group": s.group.name, "role": s.get_role_display()} for s in project.shares.all()]

    def get_my_role(self, project) -> str:
        return project_role(user=self.context["request"].user, project=project).label


class ProjectFilter(filters.FilterSet):
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")

    class Meta:
        model = Project
        fields = ["name"]


class ProjectViewSet(ProjectScopedMixin, viewsets.ModelViewSet):
    """Projects you own or that are shared with your groups."""

    serializer_class = ProjectSerializer
    filterset_class = ProjectFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at"]
    action_roles = {"share": Role.OWNER, "unshare": Role.OWNER, "destroy": Role.OWNER}

    def get_queryset(self):
        return (
            project_list_visible(user=self.request.user)
            .select_related("owner")
            .prefetch_related("shares__group")
        )

    def project_of(self, obj):
        return obj

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.project_create(
            owner=self.request.user, name=data["name"], description=data.get("description", "")
        )

    def perform_update(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.project_update(
            project=serializer.instance, name=data.get("name"), description=data.get("description")
        )

    def perform_destroy(self, instance):
        services.project_delete(project=instance)

    @extend_schema(request=ShareSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["post"])
    def share(self, request, pk=None):
        """Share with a group as viewer or editor (owner only)."""
        project = self.get_object()
        body = ShareSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.project_share(
            project=project, group_name=body.validated_data["group"], role=body.validated_data["role"]
        )
        return Response(self.get_serializer(project).data)

    @extend_schema(request=ShareSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["post"])
    def unshare(self, request, pk=None):
        """Take a group's access away (owner only)."""
        project = self.get_object()
        body = ShareSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.project_unshare(project=project, group_name=body.validated_data["group"])
        return Response(self.get_serializer(project).data, status=status.HTTP_200_OK)
