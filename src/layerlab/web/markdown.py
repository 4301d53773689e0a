"""Journal markdown to HTML, safely: raw HTML is escaped by the parser, and the output is sanitized too."""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

# CommonMark plus tables and strikethrough; ``html`` off, so raw HTML in the text stays text.
_parser = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])
TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}


def _same_site_images(tag: str, attribute: str, value: str) -> str | None:
    """Images only from this server (``/api/...``): an outside picture would be a tracking pixel, and offline."""
    if tag == "img" and attribute == "src" and (not value.startswith("/") or value.startswith(("//", "/\\"))):
        return None
    return value


def render_markdown(text: str) -> SafeString:
    """HTML for a journal body.

    Two layers, so one slip does not open a hole: markdown-it escapes raw HTML and refuses
    ``javascript:`` links; nh3 (the Ammonia sanitizer) then keeps only the tags and attributes above,
    with http(s)/mailto/relative URLs, marks links ``rel="noopener noreferrer nofollow"`` and drops
    the address of any image not on this server (the page loads nothing from outside).
    """
    html = _parser.render(text or "")
    clean = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        attribute_filter=_same_site_images,
    )
    return mark_safe(clean)  # noqa: S308 (sanitized just above)
