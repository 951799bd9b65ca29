"""Sanitising the text of uploaded documents as Nightscout's purifier (DOMPurify) does: an entry or a treatment
read back by a Nightscout web page must not carry markup that runs in the reader's browser."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

# --- sanitising text, as Nightscout's purifier (DOMPurify) does --------------------------------------------------

SAFE_TAGS = frozenset(
    [
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "code",
        "div",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
    ]
)
DROPPED_WITH_CONTENT = frozenset(
    ["script", "style", "iframe", "object", "embed", "noscript", "template", "title", "textarea", "select"]
)
SAFE_ATTRIBUTES = frozenset(["alt", "class", "href", "src", "title", "width", "height", "colspan", "rowspan"])
VOID_TAGS = frozenset({"br", "hr", "img"})


class _Purifier(HTMLParser):
    """Keeps harmless markup (tags and attributes of a short list, links only to http, https and mailto) and the
    text, as DOMPurify does with Nightscout's treatments and entries: ``<IMG SRC="javascript:…">`` → ``<img>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skipping += 1
        if self.skipping or tag not in SAFE_TAGS:
            return
        kept = ""
        for name, value in attrs:
            if name not in SAFE_ATTRIBUTES or value is None:
                continue
            if name in ("href", "src") and not re.match(r"^\s*(https?:|mailto:|[^:]*$)", value, re.IGNORECASE):
                continue
            kept += f' {name}="{html.escape(value, quote=True)}"'
        self.out.append(f"<{tag}{kept}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skipping = max(0, self.skipping - 1)
            return
        if not self.skipping and tag in SAFE_TAGS and tag not in VOID_TAGS:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(html.escape(data, quote=False))


def purify(text: str) -> str:
    """``text`` without markup that could run in a browser; text without ``<``, ``>`` or ``&`` as it is."""
    if "<" not in text and ">" not in text and "&" not in text:
        return text
    parser = _Purifier()
    parser.feed(text)
    parser.close()
    return "".join(parser.out)


def purified(value: Any, depth: int = 0) -> Any:
    """Every text value of the documents purified, as Nightscout purifies every non-numeric string it is sent."""
    if type(value) is str:
        return purify(value)
    if type(value) is dict and depth < 64:
        return {k: purified(v, depth + 1) for k, v in value.items()}
    if type(value) is list and depth < 64:
        return [purified(v, depth + 1) for v in value]
    return value
