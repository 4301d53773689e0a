"""Reads on projects, always scoped to what the user may see."""

from __future__ import annotations

from django.db.models import Max, Q, QuerySet

from layerlab.apps.projects.models import Project, ProjectMember, ProjectShare, Role


def project_list_visible(*, user) -> QuerySet[Project]:
    """Projects the user owns, is a member of, or that are shared with one of their groups (all, for superusers)."""
    if not user or not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    shared = ProjectShare.objects.filter(group__user=user).values("project_id")
    member = ProjectMember.objects.filter(user=user).values("project_id")
    return Project.objects.filter(Q(owner=user) | Q(id__in=shared) | Q(id__in=member))


def project_role(*, user, project: Project) -> Role:
    """The user's role in the project: owner (superusers too), else the best of membership and groups."""
    if not user or not user.is_authenticated:
        return Role.NONE
    if user.is_superuser or project.owner_id == user.id:
        return Role.OWNER
    best = ProjectShare.objects.filter(project=project, group__user=user).aggregate(role=Max("role"))["role"]
    own = ProjectMember.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    return Role(max(best or Role.NONE, own or Role.NONE))


def project_get_visible(*, user, project_id: int) -> Project | None:
    """The project if the user may see it, else None (the API answers 404 either way)."""
    return project_list_visible(user=user).filter(id=project_id).first()


def project_members(*, project: Project) -> list[dict]:
    """Who has access: the owner first, then users by name, then groups (with their users).

    Rows are ``{"kind": "user"|"group", "name", "role", "removable", "users"}``; the owner row
    is not removable (the project's owner is changed in the admin).
    """

    def row(kind: str, name: str, role: str, removable: bool = True, users=()) -> dict:
        return {"kind": kind, "name": name, "role": role, "removable": removable, "users": sorted(users)}

    rows = [row("user", project.owner.username, "owner", removable=False)]
    for member in project.members.select_related("user").order_by("user__username"):
        rows.append(row("user", member.user.username, member.get_role_display()))
    shares = project.shares.select_related("group").prefetch_related("group__user_set")
    for share in shares.order_by("group__name"):
        users = [u.username for u in share.group.user_set.all()]
        rows.append(row("group", share.group.name, share.get_role_display(), users=users))
    return rows
