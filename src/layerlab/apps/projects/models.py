"""Project, its shares with Django groups (viewer or editor) and its members by name (up to owner)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models


class Role(models.IntegerChoices):
    """What a user may do in a project; higher includes lower."""

    NONE = 0, "none"
    VIEWER = 1, "viewer"
    EDITOR = 2, "editor"
    OWNER = 3, "owner"


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_projects"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="project_unique_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name


class ProjectShare(models.Model):
    """A group's access to a project: viewer or editor (the owner is on the project)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="shares")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="project_shares")
    role = models.PositiveSmallIntegerField(choices=[(Role.VIEWER, "viewer"), (Role.EDITOR, "editor")])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "group"], name="share_unique_group")]

    def __str__(self) -> str:
        return f"{self.project} -> {self.group} ({self.get_role_display()})"


class ProjectMember(models.Model):
    """One user's access to a project: viewer, editor or (co-)owner; the project's ``owner`` stays owner."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_memberships"
    )
    role = models.PositiveSmallIntegerField(
        choices=[(Role.VIEWER, "viewer"), (Role.EDITOR, "editor"), (Role.OWNER, "owner")]
    )

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="member_unique_user")]

    def __str__(self) -> str:
        return f"{self.project} -> {self.user} ({self.get_role_display()})"


class ProjectDataRoot(models.Model):
    """A server folder whose files the project's editors may name as ``data.path`` (granted by a superuser).

    Checked on the real path (symlinks resolved) of both the folder and the data path; without a grant a
    non-superuser reads only uploads and built-in sources.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="data_roots")
    path = models.CharField(max_length=1000, help_text="absolute folder on the server (and on every worker)")
    note = models.CharField(max_length=200, blank=True, default="")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "path"], name="data_root_unique_path")]

    def __str__(self) -> str:
        return f"{self.project}: {self.path}"
