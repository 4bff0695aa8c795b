"""One line per row from a pattern the report writes, so a list reads as prose without a ``{% for %}`` loop:
``bullet_list(top(functions, 3, by="p95_duration_ms"), line="{name} ({entity}): **{p95_duration_ms:duration_ms}**")``
or, inline, ``names(costliest, line="{name} {aws.last_month_cost:money_cents}")``.

A field is a key or dotted metric path of the row (``{aws.last_month_cost}``; ``.0`` is a list's first row,
nothing when the list is empty). After a colon comes how to show it: a column format (money, money_cents,
number, percent, months, date, month, duration_ms, count, list; ``percent:1`` for one decimal),
``plural:call`` or ``plural:entry|entries`` ("3 calls", "1 entry"), or ``counts`` (a mapping of counts
in words, zeros left out: "1 critical, 2 high"). After a ``?`` comes an optional phrase, written only when
the value is there (available, not 0, not empty): ``{throttles:number?, # turned away}`` gives ", 14 turned away" or nothing.
Every value is escaped; the pattern's own Markdown (``**bold**``) is kept, as the template's prose is."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from flows.templating.escape import MarkdownSafe, escape_inline, escape_markdown
from flows.templating.formatters import FORMATTERS, number, plural, unavailable_text
from sources.registry import is_available

__all__ = ["fill_line", "counts_text", "LINE_FORMATS"]

LINE_FORMATS = ("text", *FORMATTERS, "plural", "counts")


def _lookup(row: Any, path: str) -> Any:
    value = row
    for part in path.split("."):
        if isinstance(value, Mapping):
            if part not in value:
                raise KeyError(path)
            value = value[part]
        elif isinstance(value, list | tuple) and part.isdigit():  # "{aws.cost_by_service_last_month.0.service}"
            if int(part) >= len(value):
                return None
            value = value[int(part)]
        elif hasattr(value, part):
            value = getattr(value, part)
        else:
            raise KeyError(path)
        if value is None or not is_available(value):
            return value
    return value


def counts_text(value: Any) -> str:
    """{"critical": 1, "high": 2, "medium": 0} -> "1 critical, 2 high" (in the mapping's order, zeros left
    out); "none" when every count is 0."""
    if not is_available(value):
        return unavailable_text(value)
    parts = [f"{number(count)} {name}" for name, count in (value or {}).items() if count]
    return ", ".join(parts) or "none"


def _value(row: Any, field: str, line: str) -> Any:
    try:
        return _lookup(row, field)
    except KeyError:
        keys = ", ".join(map(str, row)) if isinstance(row, Mapping) else type(row).__name__
        raise ValueError(f"line {line!r}: a row has no {field!r} (it has {keys})") from None


def _formatted(value: Any, spec: str, escape: Any, line: str) -> str:
    """One value in its format: a column format, ``text``, ``plural:word|words`` or ``counts``."""
    name, _, argument = spec.partition(":")
    if not name or name == "text":
        return escape(value)
    if name == "plural":
        singular, _, plural_form = argument.partition("|")
        if not singular:
            raise ValueError(f"line {line!r}: write plural:word or plural:word|words")
        return escape(plural(value, singular, plural_form or None))
    if name == "counts":
        return escape(counts_text(value))
    if name not in FORMATTERS:
        raise ValueError(f"line {line!r}: unknown format {name!r}; use one of {', '.join(LINE_FORMATS)}")
    if argument:
        if not argument.isdigit() or name not in ("number", "percent", "months"):
            raise ValueError(f"line {line!r}: {name}:{argument} - only number, percent and months take "
                             "a number of digits (percent:1)")
        return escape(FORMATTERS[name](value, int(argument)))
    return escape(FORMATTERS[name](value))


def _field_text(value: Any, format_spec: str, inline: bool, line: str) -> str:
    """``inline``: text comes before the value on its line, so what only matters at a line's start ("1." or
    "-") is not escaped. An optional phrase ("?, # turned away") is left out for nothing, 0, empty or
    unavailable; its words are the pattern's own text, kept as written."""
    spec, optional, words = format_spec.partition("?")
    if optional and (value is None or not is_available(value) or not value):
        return ""
    text = _formatted(value, spec, escape_inline if inline else escape_markdown, line)
    if not optional:
        return text
    if "#" not in words:
        raise ValueError(f"line {line!r}: an optional phrase after ? needs # where the value goes")
    return words.replace("#", text)


def fill_line(row: Any, line: str) -> MarkdownSafe:
    """``line`` with each ``{field:format}`` filled from ``row`` (see the module's docstring)."""
    if not isinstance(line, str):
        raise ValueError(f"line must be text like \"{{name}}: {{amount:money}}\", got {line!r}")
    parts: list[str] = []
    try:
        for literal, field, spec, conversion in string.Formatter().parse(line):
            parts.append(literal)
            if field is None:
                continue
            if not field or field.isdigit():
                raise ValueError(f"line {line!r}: name each field, like {{name}} or {{finance.burn_rate:money}}")
            if conversion is not None:
                raise ValueError(f"line {line!r}: write {{field:format}}, not a !{conversion} conversion")
            if "{" in (spec or ""):
                raise ValueError(f"line {line!r}: a format cannot hold another field")
            parts.append(_field_text(_value(row, field, line), spec or "", bool("".join(parts).strip()), line))
    except ValueError as exc:  # the parser's own errors ("expected '}'") get the pattern named too
        message = str(exc)
        raise ValueError(message if message.startswith("line ") else f"line {line!r}: {message}") from None
    return MarkdownSafe("".join(parts))
