"""The API's parsers: JSON with a nesting limit, multipart with the upload size limit (400, never 500)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, MultiPartParser

# No resource nests anywhere near this deep; a deeper body is an attack or a mistake.
MAX_DEPTH = 64
# Room for the form fields that come with an upload's file (name, project, options).
FORM_FIELDS_BYTES = 64 * 1024


def nesting_depth(value) -> int:
    """Depth of nested lists/dicts, computed without recursion (a deep value must not overflow the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                break
            stack.extend((child, depth + 1) for child in item)
    return deepest


class SafeJSONParser(JSONParser):
    """JSON bodies nested too deeply (Python's decoder would raise RecursionError) answer 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels") from None
        if nesting_depth(data) > MAX_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
        return data


class LimitedMultiPartParser(MultiPartParser):
    """Multipart bodies over the upload limit answer 400 before a byte is stored.

    The upload services check each file's size too, but only once Django has spooled the whole
    body to disk; a client could otherwise fill the disk with one request.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.LAYERLAB_UPLOAD_MAX_BYTES + FORM_FIELDS_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            length = 0  # Django's own parser refuses a malformed length
        if length > limit:
            raise ParseError(
                f"the upload is {length} bytes, the limit is {settings.LAYERLAB_UPLOAD_MAX_BYTES} "
                "(LAYERLAB_UPLOAD_MAX_MB)"
            )
        return super().parse(stream, media_type, parser_context)
