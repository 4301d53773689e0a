"""A Content-Security-Policy for the dashboard's pages: a second line of defence against injected scripts.

The pages load scripts, styles and Chart.js from this server only and have no inline script,
so ``script-src 'self'`` costs nothing; style attributes stay allowed (the heat map's cell
shades are set that way). The admin and the API docs (Swagger UI's inline bootstrap script)
keep Django's and drf-spectacular's own behaviour.
"""

from __future__ import annotations

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
EXEMPT_PREFIXES = ("/api/", "/admin/")


class ContentSecurityPolicyMiddleware:
    """Adds ``Content-Security-Policy`` to HTML responses outside the admin and the API."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        is_html = response.get("Content-Type", "").startswith("text/html")
        if is_html and not request.path.startswith(EXEMPT_PREFIXES):
            response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
