"""Database ids read from untrusted text (query parameters): a positive 64-bit integer, or nothing.

``"99999999999999999999999"`` overflows every database's integer column (a 500 when it reaches
the query): a value outside ``1..MAX_ID`` is no id at all, like ``"abc"``.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_ID = 2**63 - 1  # the largest value of a BigAutoField (SQLite INTEGER, PostgreSQL bigint)


def parse_id(value) -> int | None:
    """``value`` as an id when it is one (ASCII digits, 1..MAX_ID), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value <= MAX_ID else None
    text = str(value or "").strip()
    # str.isdigit() also accepts "²" and other digits int() refuses; 20 digits is above MAX_ID already
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def id_param(params: Mapping, name: str) -> int | None:
    """The id in query parameter ``name`` (None when absent or not an id: the filter is ignored)."""
    return parse_id(params.get(name, ""))


def id_list_param(params, name: str, limit: int | None = None) -> list[int]:
    """The ids of a repeated query parameter (``?runs=1&runs=2``), in order, invalid ones left out."""
    values = params.getlist(name) if hasattr(params, "getlist") else [params.get(name, "")]
    ids = [i for i in (parse_id(v) for v in values) if i is not None]
    return ids[:limit] if limit is not None else ids
