"""What a page may show or do: visible objects or 404, the role check, service errors as messages."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme

from layerlab.apps.projects.models import Project, Role
from layerlab.apps.projects.selectors import project_list_visible, project_role
from layerlab.core.errors import LayerlabError
from layerlab.core.ids import parse_id

LOGIN_URL = "web:login"


def page(view):
    """A dashboard page: signed-in users only (others go to the sign-in page)."""
    return login_required(view, login_url=LOGIN_URL)


def visible_or_404(queryset, pk):
    """The object of a user-scoped queryset, or 404: what a user may not see does not exist."""
    if parse_id(pk) is None:  # /runs/99999999999999999999999/ overflows the database's integer
        raise Http404("not found")
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise Http404("not found")
    return obj


def require_role(user, project: Project, role: Role) -> Role:
    """The user's role in a project they can see; 404 when they cannot, 403 when it is too low."""
    have = project_role(user=user, project=project)
    if have == Role.NONE:
        raise Http404("not found")
    if have < role:
        raise PermissionDenied(f"this needs the {role.label} role in project '{project.name}'")
    return have


def projects_with_role(user, role: Role) -> list[Project]:
    """Visible projects where the user has at least ``role`` (for the project pickers of forms)."""
    return [p for p in project_list_visible(user=user) if project_role(user=user, project=p) >= role]


def back_url(request, fallback: str = "/") -> str:
    """The page the request came from, when it is on this site (never an open redirect)."""
    referer = request.META.get("HTTP_REFERER", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return fallback


def report_errors(view):
    """Turn a service's ``LayerlabError`` into a one-line message on the page, never a 500."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except LayerlabError as exc:
            messages.error(request, exc.one_line())
            return redirect(back_url(request))

    return wrapper
