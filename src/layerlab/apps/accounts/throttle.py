"""Failed sign-ins throttled per user name and per client address, on every login door of the lab.

The dashboard's ``/signin/``, the browsable API's ``/api/auth/login/``, the admin's ``/admin/login/``
and the token endpoint ``/api/auth/token/`` all authenticate through ``django.contrib.auth``, which
sends ``user_login_failed``: each failure is counted for the user name and for the address. After
``LAYERLAB_LOGIN_FAILURES_PER_USER`` (or ``..._PER_IP``) failures within ``LAYERLAB_LOGIN_WINDOW_SECONDS``
``LoginThrottleMiddleware`` answers the next POST to a login door 429 with ``Retry-After``, before
the password is checked. A successful sign-in clears its user name's count.

The counts live in the ``login`` cache: a file cache under ``LAYERLAB_HOME/cache/login``, so every
gunicorn worker of one machine shares them (the default cache is per process, which would give each
worker its own allowance).
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import caches
from django.http import HttpResponse, JsonResponse
from django.utils.html import escape

CACHE_ALIAS = "login"
# The URL names of the views that check passwords (a POST to one of them is a sign-in attempt).
LOGIN_VIEWS = {"web:login", "rest_framework:login", "admin:login", "auth-token"}


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or behind the lab's HTTPS proxy (LAYERLAB_HTTPS) the address
    that proxy appended to X-Forwarded-For (the rightmost: entries left of it are the client's word)."""
    meta = getattr(request, "META", {}) or {}
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None) and forwarded:
        return forwarded.split(",")[-1].strip()
    return meta.get("REMOTE_ADDR", "") or "unknown"


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]
    return f"login-failures:{kind}:{digest}"


def _limits() -> tuple[int, int, int]:
    return (
        settings.LAYERLAB_LOGIN_FAILURES_PER_USER,
        settings.LAYERLAB_LOGIN_FAILURES_PER_IP,
        settings.LAYERLAB_LOGIN_WINDOW_SECONDS,
    )


def _recent(key: str, window: int, now: float) -> list[float]:
    return [t for t in caches[CACHE_ALIAS].get(key, []) if now - t < window]


def login_failure_record(*, username: str, address: str) -> None:
    """Count one failed sign-in for the user name and for the address."""
    _, _, window = _limits()
    now = time.time()
    cache = caches[CACHE_ALIAS]
    for key in (_key("user", username or ""), _key("ip", address)):
        cache.set(key, [*_recent(key, window, now)[-999:], now], timeout=window)


def login_failures_clear(*, username: str) -> None:
    """Forget the failures of a user name (after it signed in)."""
    caches[CACHE_ALIAS].delete(_key("user", username or ""))


def login_retry_after(*, username: str, address: str) -> int:
    """Seconds until the user name and the address may try again (0: now)."""
    per_user, per_ip, window = _limits()
    now = time.time()
    wait = 0.0
    for key, limit in ((_key("user", username or ""), per_user), (_key("ip", address), per_ip)):
        recent = sorted(_recent(key, window, now))
        if limit > 0 and len(recent) >= limit:
            wait = max(wait, recent[-limit] + window - now)
    return math.ceil(wait) if wait > 0 else 0


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    login_failure_record(
        username=str((credentials or {}).get("username") or ""), address=client_address(request)
    )


def on_logged_in(sender, request, user, **kwargs) -> None:
    login_failures_clear(username=user.get_username())


def connect_signals() -> None:
    user_login_failed.connect(on_login_failed, dispatch_uid="layerlab-login-failed")
    user_logged_in.connect(on_logged_in, dispatch_uid="layerlab-logged-in")


def throttled_response(request, view_name: str, wait: int) -> HttpResponse:
    """429 with Retry-After: JSON for the API's token endpoint, a short page for the HTML sign-in forms."""
    minutes = max(1, math.ceil(wait / 60))
    detail = (
        f"too many failed sign-ins for this user name or from this address; "
        f"try again in {wait} seconds (about {minutes} min)"
    )
    if view_name == "auth-token":
        response = JsonResponse({"error": "throttled", "detail": detail}, status=429)
    elif view_name == "web:login":
        from django.template.loader import render_to_string

        html = render_to_string("web/login.html", {"throttled": detail, "next": ""}, request=request)
        response = HttpResponse(html, status=429)
    else:
        response = HttpResponse(
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Too many sign-in attempts"
            f"</title></head><body><h1>Too many sign-in attempts</h1><p role='alert'>{escape(detail)}.</p>"
            "</body></html>",
            status=429,
        )
    response["Retry-After"] = str(wait)
    return response


class LoginThrottleMiddleware:
    """Refuse a POST to a login view while its user name or address has too many recent failures."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if request.method != "POST" or match is None or match.view_name not in LOGIN_VIEWS:
            return None
        username = request.POST.get("username", "")
        if not username and match.view_name == "auth-token" and request.content_type == "application/json":
            username = _json_username(request)
        wait = login_retry_after(username=username, address=client_address(request))
        return throttled_response(request, match.view_name, wait) if wait else None


def _json_username(request) -> str:
    import json

    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):  # the view answers bad bodies itself
        return ""
    return str(body.get("username") or "") if isinstance(body, dict) else ""
