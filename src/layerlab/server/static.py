"""Serves static files (admin, browsable API, Swagger UI) from the apps, so gunicorn alone is a whole lab."""

from __future__ import annotations

import mimetypes

from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404


def static_file(request, path: str):
    """One file found by the staticfiles finders (which refuse paths leaving their folders)."""
    if ".." in path.split("/") or path.startswith("/"):
        raise Http404("no such static file")
    found = finders.find(path)
    if not found or isinstance(found, list):
        raise Http404("no such static file")
    content_type, encoding = mimetypes.guess_type(found)
    # FileResponse closes the file when the response is done.
    response = FileResponse(open(found, "rb"), content_type=content_type or "application/octet-stream")  # noqa: SIM115
    if encoding:
        response.headers["Content-Encoding"] = encoding
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
