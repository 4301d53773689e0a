"""The API's error shape: every error answers JSON ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from layerlab.core.errors import LayerlabError


def flatten_errors(data, prefix: str = "") -> list[str]:
    """``{"config": {"train": ["bad"]}}`` -> ``["config.train: bad"]``."""
    if isinstance(data, dict):
        lines = []
        for key, value in data.items():
            name = key if key != "non_field_errors" else ""
            lines += flatten_errors(value, f"{prefix}.{name}" if prefix and name else (name or prefix))
        return lines
    if isinstance(data, list):
        lines = []
        for index, value in enumerate(data):
            lines += flatten_errors(
                value, prefix if not isinstance(value, dict | list) else f"{prefix}[{index}]"
            )
        return lines
    return [f"{prefix}: {data}" if prefix else str(data)]


def exception_handler(exc, context):
    """Render LayerlabError as 400 and DRF errors in the same JSON shape."""
    if isinstance(exc, LayerlabError):
        return Response(exc.as_dict(), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, IntegrityError):
        # A uniqueness race the services' checks could not see (two requests at once).
        return Response(
            {
                "error": "conflict",
                "detail": "the request conflicts with a change made at the same time; retry it",
            },
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DataError):
        return Response(
            {"error": "bad_value", "detail": f"a value cannot be stored: {str(exc).strip().splitlines()[0]}"},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return Response(
            {
                "error": "too_large",
                "detail": "the request body is too large; send fewer points or upload a file",
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    elif isinstance(exc, SuspiciousOperation):
        return Response({"error": "bad_request", "detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "error": "invalid",
            "detail": "; ".join(flatten_errors(exc.detail)),
            "fields": exc.detail,
        }
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        response.data = {"error": code, "detail": str(exc.detail)}
    return response
