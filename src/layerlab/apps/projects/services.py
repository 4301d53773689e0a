"""Writes on projects: create, edit, share with groups, delete."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from layerlab.apps.projects.models import Project, ProjectShare, Role
from layerlab.core.errors import LayerlabError


class ProjectError(LayerlabError):
    """A project rule is broken (duplicate name, unknown group, bad role)."""

    kind = "project_error"


SHARE_ROLES = {"viewer": Role.VIEWER, "editor": Role.EDITOR}


@transaction.atomic
def project_create(*, owner, name: str, description: str = "") -> Project:
    """Create a project owned by ``owner``; names are unique per owner."""
    if Project.objects.filter(owner=owner, name=name).exists():
        raise ProjectError(
            f"you already have a project named '{name}'", hint="pick another name", where="name"
        )
    return Project.objects.create(owner=owner, name=name, description=description)


@transaction.atomic
def project_update(*, project: Project, name: str | None = None, description: str | None = None) -> Project:
    """Rename or re-describe a project."""
    if name is not None and name != project.name:
        if Project.objects.filter(owner=project.owner, name=name).exclude(id=project.id).exists():
            raise ProjectError(f"a project named '{name}' already exists", where="name")
        project.name = name
    if description is not None:
        project.description = description
    try:
        project.save()
    except IntegrityError:
        raise ProjectError(f"a project named '{name}' already exists", where="name") from None
    return project


@transaction.atomic
def project_share(*, project: Project, group_name: str, role: str) -> ProjectShare:
    """Give a group ``viewer`` or ``editor`` access (replacing its previous role)."""
    if role not in SHARE_ROLES:
        raise ProjectError(f"role '{role}' is not one of viewer, editor", where="role")
    group = Group.objects.filter(name=group_name).first()
    if group is None:
        raise ProjectError(
            f"group '{group_name}' does not exist", hint="create it in the admin", where="group"
        )
    share, _ = ProjectShare.objects.update_or_create(
        project=project, group=group, defaults={"role": SHARE_ROLES[role]}
    )
    return share


@transaction.atomic
def project_unshare(*, project: Project, group_name: str) -> None:
    """Remove a group's access (nothing happens if it had none)."""
    ProjectShare.objects.filter(project=project, group__name=group_name).delete()


@transaction.atomic
def project_delete(*, project: Project) -> None:
    """Delete a project and everything inside it."""
    project.delete()
