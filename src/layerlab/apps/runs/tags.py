"""Run tags: short labels checked at every edge the same way (API, CLI, client, dashboard)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from layerlab.core.errors import ConfigError

MAX_TAGS = 20
MAX_LENGTH = 40
# Letters, digits and a few separators; no spaces or commas, so a tag list reads (and splits) unambiguously.
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+=/-]*$")
TAG_RULE = f"a tag is 1 to {MAX_LENGTH} letters, digits or _ . : + = / - (starting with a letter or digit)"


def tag_check(tag: str) -> str:
    """One tag, stripped; ``ConfigError`` naming it when it breaks the rule."""
    text = str(tag).strip()
    if not text or len(text) > MAX_LENGTH or not TAG_RE.match(text):
        shown = text if len(text) <= MAX_LENGTH else text[:MAX_LENGTH] + "…"
        raise ConfigError(f"tag '{shown}' is not allowed", hint=TAG_RULE, where="tags")
    return text


def tags_clean(tags: Iterable[str] | None) -> list[str]:
    """A run's tags: each checked, duplicates dropped (first kept, order kept), at most ``MAX_TAGS``.

    Args:
        tags: strings; a single string is read as a comma-separated list (``--tag a,b``).
    """
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    clean: list[str] = []
    for tag in tags:
        if not str(tag).strip():
            continue  # "a,,b" or a trailing comma
        text = tag_check(tag)
        if text not in clean:
            clean.append(text)
    if len(clean) > MAX_TAGS:
        raise ConfigError(f"{len(clean)} tags given", hint=f"a run has at most {MAX_TAGS} tags", where="tags")
    return clean
