"""The API's JSON parser: DRF's, plus a nesting limit so a pathological body answers 400, never 500."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# No resource nests anywhere near this deep; a deeper body is an attack or a mistake.
MAX_DEPTH = 64


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
