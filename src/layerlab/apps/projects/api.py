"""Projects API: CRUD, members (users by name, groups), the caller's role."""

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
from layerlab.apps.projects.selectors import project_list_visible, project_members, project_role


class ShareSerializer(StrictFieldsMixin, serializers.Serializer):
    group = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=["viewer", "editor"], required=False, default="viewer")


class MemberAddSerializer(StrictFieldsMixin, serializers.Serializer):
    user = serializers.CharField(max_length=150, required=False)
    group = serializers.CharField(max_length=150, required=False)
    role = serializers.ChoiceField(choices=["viewer", "editor", "owner"], required=False, default="viewer")

    def validate(self, data):
        if ("user" in data) == ("group" in data):
            raise serializers.ValidationError("send either user or group (a name)")
        if "group" in data and data["role"] == "owner":
            raise serializers.ValidationError({"role": ["a group can be viewer or editor; owners are users"]})
        return data


class DataRootSerializer(StrictFieldsMixin, serializers.Serializer):
    path = serializers.CharField(max_length=1000, help_text="an absolute folder on the server")
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class MemberSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["user", "group"])
    name = serializers.CharField()
    role = serializers.CharField()
    removable = serializers.BooleanField()
    users = serializers.ListField(child=serializers.CharField())


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
    action_roles = {
        "share": Role.OWNER,
        "unshare": Role.OWNER,
        "destroy": Role.OWNER,
        "member_add": Role.OWNER,
        "member_remove": Role.OWNER,
    }

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

    @extend_schema(request=None, responses=MemberSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def members(self, request, pk=None):
        """Who has access: the owner, users by name, groups (anyone who may see the project)."""
        return Response(project_members(project=self.get_object()))

    @extend_schema(request=MemberAddSerializer, responses={201: MemberSerializer(many=True)})
    @members.mapping.post
    def member_add(self, request, pk=None):
        """Give a user (by name) or a group a role (owner only; a user can be made owner, a group not)."""
        project = self.get_object()
        body = MemberAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if "user" in data:
            services.project_member_add(
                project=project, username=data["user"], role=data["role"], by=request.user
            )
        else:
            services.project_share(project=project, group_name=data["group"], role=data["role"])
        return Response(project_members(project=project), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<kind>(?:user|group))/(?P<name>[^/]+)")
    def member_remove(self, request, pk=None, kind=None, name=None):
        """Take a user's or a group's access away (owner only; the project's owner cannot be removed)."""
        project = self.get_object()
        if kind == "user":
            if name == project.owner.username:
                raise services.ProjectError("the project's owner cannot be removed", where="user")
            services.project_member_remove(project=project, username=name)
        else:
            services.project_unshare(project=project, group_name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=DataRootSerializer, responses=DataRootSerializer(many=True))
    @action(detail=True, methods=["get", "post", "delete"], url_path="data-roots")
    def data_roots(self, request, pk=None):
        """Server folders the project may read as ``data.path`` (superusers only): list, grant (POST), revoke (DELETE)."""
        from rest_framework.exceptions import PermissionDenied

        project = self.get_object()
        if not request.user.is_superuser:
            raise PermissionDenied("only superusers see or change the server folders granted to a project")
        if request.method != "GET":
            body = DataRootSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            data = body.validated_data
            if request.method == "POST":
                services.project_data_root_grant(
                    project=project, path=data["path"], note=data["note"], by=request.user
                )
            else:
                services.project_data_root_revoke(project=project, path=data["path"], by=request.user)
        roots = project.data_roots.all()
        return Response([{"path": r.path, "note": r.note} for r in roots])
