"""Writes on projects: create, edit, share with groups and with users by name, delete."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from layerlab.apps.projects.models import Project, ProjectDataRoot, ProjectMember, ProjectShare, Role
from layerlab.apps.projects.selectors import project_role
from layerlab.core.errors import LayerlabError


class ProjectError(LayerlabError):
    """A project rule is broken (duplicate name, unknown group, bad role)."""

    kind = "project_error"


SHARE_ROLES = {"viewer": Role.VIEWER, "editor": Role.EDITOR}
MEMBER_ROLES = {**SHARE_ROLES, "owner": Role.OWNER}


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
def project_member_add(*, project: Project, username: str, role: str, by=None) -> ProjectMember:
    """Give one user ``viewer``, ``editor`` or ``owner`` access by user name (replacing their previous role).

    Only an owner may make another owner (``by``: who asks; the interfaces also require the owner
    role to manage members at all). In a lab, "no such user" is said plainly: user names are not secret.
    """
    if role not in MEMBER_ROLES:
        raise ProjectError(f"role '{role}' is not one of viewer, editor, owner", where="role")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ProjectError(
            f"there is no user named '{username}'",
            hint="check the spelling (user names are exact)",
            where="user",
        )
    if user.id == project.owner_id:
        raise ProjectError(f"'{username}' owns this project already", where="user")
    if role == "owner" and by is not None and project_role(user=by, project=project) < Role.OWNER:
        raise ProjectError("only an owner can make another owner", where="role")
    member, _ = ProjectMember.objects.update_or_create(
        project=project, user=user, defaults={"role": MEMBER_ROLES[role]}
    )
    return member


@transaction.atomic
def project_member_remove(*, project: Project, username: str) -> None:
    """Take one user's own access away (their groups' shares stay; nothing happens if they had none)."""
    ProjectMember.objects.filter(project=project, user__username=username).delete()


@transaction.atomic
def project_delete(*, project: Project) -> None:
    """Delete a project and everything inside it."""
    project.delete()


def data_root_within_limits(real: str) -> bool:
    """Whether a folder may be granted: anywhere, or inside ``LAYERLAB_IMPORT_ROOTS`` when that is set."""
    import os

    from django.conf import settings

    roots = [os.path.realpath(os.path.expanduser(r)) for r in settings.LAYERLAB_IMPORT_ROOTS]
    return not roots or any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


@transaction.atomic
def project_data_root_grant(*, project: Project, path: str, by, note: str = "") -> ProjectDataRoot:
    """Let the project's members name files under the server folder ``path`` as ``data.path`` (superusers only).

    The folder is stored as its real path (symlinks resolved), which is what data paths are checked against.
    """
    import os

    if by is None or not by.is_superuser:
        raise ProjectError("only a superuser can grant server folders to a project", where="path")
    if not path or not os.path.isabs(os.path.expanduser(path)):
        raise ProjectError("give an absolute folder on the server", where="path")
    real = os.path.realpath(os.path.expanduser(path))
    if not os.path.isdir(real):
        raise ProjectError(f"'{path}' is not a folder on this server", where="path")
    if not data_root_within_limits(real):
        raise ProjectError(
            f"'{path}' is outside LAYERLAB_IMPORT_ROOTS", hint="grant a folder inside them", where="path"
        )
    root, _ = ProjectDataRoot.objects.update_or_create(
        project=project, path=real, defaults={"note": note, "granted_by": by}
    )
    return root


@transaction.atomic
def project_data_root_revoke(*, project: Project, path: str, by) -> None:
    """Take a granted folder back (new datasets and runs under it are refused from now on)."""
    import os

    if by is None or not by.is_superuser:
        raise ProjectError("only a superuser can change a project's server folders", where="path")
    real = os.path.realpath(os.path.expanduser(path)) if path else path
    ProjectDataRoot.objects.filter(project=project, path__in={path, real}).delete()
