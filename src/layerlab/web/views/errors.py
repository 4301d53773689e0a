"""Error pages: the dashboard's layout and navigation for people, ``{"error", "detail"}`` JSON under /api/."""

from __future__ import annotations

import logging

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader

log = logging.getLogger("layerlab.web")
# The page of last resort: no template, no database, no URL reversing (any of them may be what failed).
BARE_500 = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Server error · layerlab</title>'
    "</head><body><h1>Server error</h1><p>The lab could not answer this request; the error is in the "
    'server\'s log. <a href="/">Back to the runs</a></p></body></html>'
)


def is_api(request) -> bool:
    return request.path.startswith("/api/")


def api_error(status: int, error: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": error, "detail": detail}, status=status)


def bad_request(request, exception=None):
    if is_api(request):
        return api_error(400, "bad_request", "the request is malformed")
    return render(request, "400.html", status=400)


def permission_denied(request, exception=None):
    # The reason is ours (``require_role``: "this needs the editor role in project 'x'"), escaped by the template.
    reason = str(exception or "") if exception is not None else ""
    if is_api(request):
        return api_error(403, "permission_denied", reason or "you do not have permission to do this")
    return render(request, "403.html", {"reason": reason}, status=403)


def csrf_failure(request, reason=""):
    """A POST without a valid CSRF token (a stale page, or another site's form)."""
    if is_api(request):
        return api_error(403, "csrf_failed", "CSRF check failed; send the X-CSRFToken header or use a token")
    reason = "the page was open too long or its form came from elsewhere: reload it and try again"
    return render(request, "403.html", {"reason": reason}, status=403)


def page_not_found(request, exception=None):
    if is_api(request):
        return api_error(404, "not_found", "Not found.")
    return render(request, "404.html", {"path": request.path}, status=404)


def server_error(request):
    """Rendered without the request's context (no session, user or database lookups), so it cannot fail
    the way the request did; falls back to a bare page if even the template cannot be rendered."""
    if is_api(request):
        return api_error(500, "server_error", "the server failed to answer; the error is in its log")
    try:
        body = loader.get_template("500.html").render({})
    except Exception:  # noqa: BLE001 (the error page must not raise)
        log.exception("the 500 page could not be rendered")
        body = BARE_500
    return HttpResponse(body, status=500)
