"""Reads on projects, always scoped to what the user may see."""

from __future__ import annotations

from django.db.models import Max, Q, QuerySet

from layerlab.apps.projects.models import Project, ProjectShare, Role


def project_list_visible(*, user) -> QuerySet[Project]:
    """Projects the user owns or that are shared with one of their groups (all, for superusers)."""
    if not user or not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    shared = ProjectShare.objects.filter(group__user=user).values("project_id")
    return Project.objects.filter(Q(owner=user) | Q(id__in=shared))


def project_role(*, user, project: Project) -> Role:
    """The user's role in the project: owner (superusers too), editor, viewer or none."""
    if not user or not user.is_authenticated:
        return Role.NONE
    if user.is_superuser or project.owner_id == user.id:
        return Role.OWNER
    best = ProjectShare.objects.filter(project=project, group__user=user).aggregate(role=Max("role"))["role"]
    return Role(best or Role.NONE)


def project_get_visible(*, user, project_id: int) -> Project | None:
    """The project if the user may see it, else None (the API answers 404 either way)."""
    return project_list_visible(user=user).filter(id=project_id).first()
