"""Data as inert Markdown: every ``{{ value }}`` passes through ``escape_markdown`` (a value can never add
a heading, link, table cell or HTML); helpers return ``MarkdownSafe`` text they escaped cell by cell."""

from __future__ import annotations

import re
from typing import Any

from flows.core.addresses import strip_bidi
from flows.templating.formatters import unavailable_text
from sources.registry import Unavailable


class MarkdownSafe(str):
    """Markdown produced by a helper that already escaped the data inside it."""


_CODE_SPAN = re.compile(r"`([^`]+)`")
_ALWAYS_ESCAPE = re.compile(r"([\\`*_\[\]<>#|~&!])")
# Only what would start a block at the beginning of a line: "- x", "+ x", "1. x", "---", "===".
_LINE_START = re.compile(r"^(?:[-+](?=\s|$)|[-=]+\s*$|\d{1,9}(?=[.)](?:\s|$)))")


def plain_text(value: Any) -> str:
    """A data value as the one line of text an executive reads (before Markdown escaping): "yes"/"no" for
    booleans, "—" for nothing, "not available (...)" for an unavailable figure, code quotes dropped."""
    if isinstance(value, MarkdownSafe):
        return value
    if isinstance(value, bool):  # never Python's True/False in an email
        return "yes" if value else "no"
    if isinstance(value, Unavailable):
        value = unavailable_text(value)
    text = "—" if value is None else strip_bidi(str(value))  # no override can reverse what follows it
    text = " ".join(text.split())  # a value is one line: no new blocks, no indented code
    # Notes written in Markdown quote code as `x`: an executive should see x, not the backticks.
    return _CODE_SPAN.sub(r"\1", text)


def escape_markdown(value: Any) -> str:
    """Render any data value as inert inline Markdown text."""
    if isinstance(value, MarkdownSafe):
        return value
    return escape_plain(plain_text(value))


def escape_inline(value: Any) -> str:
    """A data value as inert Markdown in the middle of a line, after other text: as ``escape_markdown``
    without the escapes that only matter at a line's start ("1. Sailo" stays as written)."""
    if isinstance(value, MarkdownSafe):
        return value
    return _ALWAYS_ESCAPE.sub(r"\\\1", plain_text(value))


def escape_plain(text: str) -> str:
    """One line of plain text (``plain_text``'s result) as inert inline Markdown."""
    if isinstance(text, MarkdownSafe):
        return text
    text = _ALWAYS_ESCAPE.sub(r"\\\1", text)
    match = _LINE_START.match(text)
    if match:
        if text[0].isdigit():  # "1. foo" would start an ordered list: escape the dot
            text = text[: match.end()] + "\\" + text[match.end() :]
        else:
            text = "\\" + text
    return text


def aside(text: Any) -> MarkdownSafe:
    """A remark in italics, its words escaped: ``{{ aside("Leaves out X: no data.") if left_out else "" }}``
    (Markdown written inside a ``{{ }}`` string would be shown as typed, since every value is escaped)."""
    words = escape_markdown(text)
    return MarkdownSafe(f"*{words}*" if words else "")


def footnote(text: Any) -> MarkdownSafe:
    """The note a "\\*" in a table points to: ``{{ footnote("Leaves out rows ...") if marked else "" }}``."""
    words = escape_markdown(text)
    return MarkdownSafe(f"\\* {words}" if words else "")


def lead(label: Any, text: Any) -> MarkdownSafe:
    """A sentence after a bold label: ``{{ lead("Out of date:", "the balance sheet is 510 days old.") }}``."""
    return MarkdownSafe(f"**{escape_markdown(label)}** {escape_markdown(text)}")
