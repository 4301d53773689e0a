"""DRF policy for everything inside a project: visibility gives 404, the role decides the rest."""

from __future__ import annotations

from rest_framework import permissions
from rest_framework.exceptions import NotFound, PermissionDenied

from layerlab.apps.projects.models import Project, Role
from layerlab.apps.projects.selectors import project_role

# The role an action needs unless the viewset's ``action_roles`` says otherwise.
DEFAULT_ROLES = {"destroy": Role.OWNER}


def required_role(view, method: str) -> Role:
    """The least role for the view's action: reads need viewer, writes editor, deletes owner."""
    roles = {**DEFAULT_ROLES, **getattr(view, "action_roles", {})}
    action = getattr(view, "action", None)
    if action in roles:
        return roles[action]
    return Role.VIEWER if method in permissions.SAFE_METHODS else Role.EDITOR


def require_role(user, project: Project, role: Role) -> None:
    """Raise 404 when the user cannot see the project, 403 when they can but lack ``role``."""
    have = project_role(user=user, project=project)
    if have == Role.NONE:
        raise NotFound()
    if have < role:
        raise PermissionDenied(
            f"this needs the {role.label} role in project '{project.name}'; you are {have.label}"
        )


class ProjectRolePermission(permissions.IsAuthenticated):
    """Object permission from the role in the object's project (``view.project_of(obj)``)."""

    def has_object_permission(self, request, view, obj) -> bool:
        project = view.project_of(obj)
        require_role(request.user, project, required_role(view, request.method))
        return True


class ProjectScopedMixin:
    """ViewSet hooks shared by the project-scoped resources."""

    permission_classes = [ProjectRolePermission]

    def project_of(self, obj) -> Project:
        return obj.project

    def check_create_role(self, project: Project) -> None:
        """Creating inside a project needs the editor role there."""
        require_role(self.request.user, project, Role.EDITOR)
