"""Projects and sharing: the list with the user's role, one project's members, groups and roles."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.models import Group
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from layerlab.apps.projects import services
from layerlab.apps.projects.models import Role
from layerlab.apps.projects.selectors import project_list_visible, project_members, project_role
from layerlab.core.errors import LayerlabError
from layerlab.web.access import page, report_errors, require_role, visible_or_404
from layerlab.web.forms import MemberForm, ProjectForm, ShareForm


@page
def projects_list(request):
    projects = project_list_visible(user=request.user).select_related("owner")
    rows = [(p, project_role(user=request.user, project=p).label) for p in projects]
    return render(request, "web/projects.html", {"rows": rows})


@page
def project_new(request):
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(
                owner=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except LayerlabError as exc:
            form.add_error(None, exc.one_line())
        else:
            messages.success(request, f"Project '{project.name}' created.")
            return redirect("web:project", project_id=project.id)
    return render(request, "web/project_new.html", {"form": form})


@page
def project_detail(request, project_id: int):
    """Members (owner, users, groups) with their roles; owners may share by name and remove."""
    project = visible_or_404(project_list_visible(user=request.user).select_related("owner"), project_id)
    role = project_role(user=request.user, project=project)
    is_owner = role >= Role.OWNER
    return render(
        request,
        "web/project_detail.html",
        {
            "project": project,
            "role": role.label,
            "is_owner": is_owner,
            "members": project_members(project=project),
            "groups": Group.objects.order_by("name").values_list("name", flat=True) if is_owner else [],
            "form": MemberForm(),
            "counts": {
                "runs": project.runs.count(),
                "datasets": project.datasets.count(),
                "entries": project.journal_entries.count(),
            },
        },
    )


@page
@require_POST
@report_errors
def project_share(request, project_id: int):
    project = visible_or_404(project_list_visible(user=request.user), project_id)
    require_role(request.user, project, Role.OWNER)
    form = ShareForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors_line())
    else:
        share = services.project_share(
            project=project, group_name=form.cleaned_data["group"], role=form.cleaned_data["role"]
        )
        messages.success(request, f"Shared with group '{share.group.name}' as {share.get_role_display()}.")
    return redirect("web:project", project_id=project.id)


@page
@require_POST
@report_errors
def project_unshare(request, project_id: int):
    project = visible_or_404(project_list_visible(user=request.user), project_id)
    require_role(request.user, project, Role.OWNER)
    group = request.POST.get("group", "")
    services.project_unshare(project=project, group_name=group)
    messages.success(request, f"Group '{group}' no longer has access.")
    return redirect("web:project", project_id=project.id)


@page
@require_POST
@report_errors
def project_member_add(request, project_id: int):
    """Share with a user or a group by name (owners only); errors come back as one line on the page."""
    project = visible_or_404(project_list_visible(user=request.user), project_id)
    require_role(request.user, project, Role.OWNER)
    form = MemberForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors_line())
        return redirect("web:project", project_id=project.id)
    data = form.cleaned_data
    if data["kind"] == "user":
        member = services.project_member_add(
            project=project, username=data["name"], role=data["role"], by=request.user
        )
        messages.success(request, f"'{member.user.username}' is now {member.get_role_display()}.")
    else:
        share = services.project_share(project=project, group_name=data["name"], role=data["role"])
        messages.success(request, f"Shared with group '{share.group.name}' as {share.get_role_display()}.")
    return redirect("web:project", project_id=project.id)


@page
@require_POST
@report_errors
def project_member_remove(request, project_id: int):
    project = visible_or_404(project_list_visible(user=request.user), project_id)
    require_role(request.user, project, Role.OWNER)
    kind, name = request.POST.get("kind", ""), request.POST.get("name", "")
    if kind == "group":
        services.project_unshare(project=project, group_name=name)
        messages.success(request, f"Group '{name}' no longer has access.")
    elif kind == "user" and name != project.owner.username:
        services.project_member_remove(project=project, username=name)
        messages.success(request, f"'{name}' no longer has access of their own (their groups' access stays).")
    else:
        messages.error(request, "choose a user or a group to remove (the project's owner stays)")
    return redirect("web:project", project_id=project.id)
