"""Template filters: safe markdown, a path's file name, a checkpoint's kind."""

from __future__ import annotations

from pathlib import PurePath

from django import template

from layerlab.core import runlayout
from layerlab.web.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(text: str):
    """Markdown rendered to sanitized HTML (no script, no event handler, no javascript: link)."""
    return render_markdown(text)


@register.filter
def basename(path: str) -> str:
    return PurePath(path or "").name


@register.filter
def checkpoint_kind(path: str) -> str:
    """``best``, ``last`` or ``numbered`` for a checkpoint's path (``core.runlayout``), else ``""``."""
    return runlayout.checkpoint_kind(path or "") or ""
