"""Jinja for report writers: sandboxed, strict, and safe with data.

Every ``{{ value }}`` passes through ``finalize``: data becomes literal text in the Markdown (it can
never add a heading, link, table cell or HTML), while helpers such as ``table()`` return
``MarkdownSafe`` output that is trusted because the helper escaped each cell itself.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.sandbox import SandboxedEnvironment

from sources.registry import Unavailable, is_available


class MarkdownSafe(str):
    """Markdown produced by a helper that already escaped the data inside it."""


_ALWAYS_ESCAPE = re.compile(r"([\\`*_\[\]<>#|~&!])")
# Only what would start a block at the beginning of a line: "- x", "+ x", "1. x", "---", "===".
_LINE_START = re.compile(r"^(?:[-+](?=\s|$)|[-=]+\s*$|\d{1,9}(?=[.)](?:\s|$)))")


def escape_markdown(value: Any) -> str:
    """Render any data value as inert inline Markdown text."""
    if isinstance(value, MarkdownSafe):
        return value
    text = "—" if value is None else str(value)
    text = " ".join(text.split())  # a value is one line: no new blocks, no indented code
    text = _ALWAYS_ESCAPE.sub(r"\\\1", text)
    match = _LINE_START.match(text)
    if match:
        if text[0].isdigit():  # "1. foo" would start an ordered list: escape the dot
            text = text[: match.end()] + "\\" + text[match.end() :]
        else:
            text = "\\" + text
    return text


# ---- formatting helpers ---------------------------------------------------------------------------


def _unavailable_text(value: Unavailable) -> str:
    return str(value)


def money(value: Any, cents: bool = False, currency: str = "$") -> str:
    if not is_available(value):
        return _unavailable_text(value)
    if value is None:
        return "—"
    amount = Decimal(str(value))
    sign = "-" if amount < 0 else ""
    digits = 2 if cents else 0
    return f"{sign}{currency}{abs(amount):,.{digits}f}"


def number(value: Any, digits: int = 0) -> str:
    if not is_available(value):
        return _unavailable_text(value)
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return f"{Decimal(str(value)):,.{digits}f}"


def percent(value: Any, digits: int = 0) -> str:
    """``value`` is a fraction: 0.125 -> 12.5% with digits=1."""
    if not is_available(value):
        return _unavailable_text(value)
    if value is None:
        return "—"
    return f"{Decimal(str(value)) * 100:,.{digits}f}%"


def months(value: Any, digits: int = 1) -> str:
    if not is_available(value):
        return _unavailable_text(value)
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "no burn (cash is not decreasing)"
    return f"{Decimal(str(value)):,.{digits}f} months"


def date(value: Any, format: str = "%b %-d, %Y") -> str:  # noqa: A002 - the name report writers expect
    if not is_available(value):
        return _unavailable_text(value)
    if value is None:
        return "—"
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return value.strftime(format)


def money_cents(value: Any) -> str:
    return money(value, cents=True)


FORMATTERS = {"money": money, "money_cents": money_cents, "number": number, "percent": percent, "months": months,
              "date": date}


def table(rows: Any, columns: Any = None, formats: Mapping[str, str] | None = None,
          empty: str = "Nothing to show.") -> MarkdownSafe:
    """A Markdown table from a list of mappings. ``columns``: keys, or a mapping key -> header.

    ``formats`` maps a key to a helper name (money, money_cents, number, percent, months, date).
    """
    if not is_available(rows):
        return MarkdownSafe(f"*{escape_markdown(str(rows))}*")
    rows = list(rows or [])
    if not rows:
        return MarkdownSafe(f"*{escape_markdown(empty)}*")
    if columns is None:
        keys = list(rows[0].keys())
        headers = [key.replace("_", " ").capitalize() for key in keys]
    elif isinstance(columns, Mapping):
        keys, headers = list(columns.keys()), list(columns.values())
    else:
        keys = list(columns)
        headers = [key.replace("_", " ").capitalize() for key in keys]
    formats = dict(formats or {})
    for key, name in formats.items():
        if name not in FORMATTERS:
            raise ValueError(f"table(): unknown format {name!r} for column {key!r}; use one of {', '.join(FORMATTERS)}")
    numeric = {key for key, name in formats.items() if name in ("money", "money_cents", "number", "percent", "months")}
    lines = ["| " + " | ".join(escape_markdown(h) for h in headers) + " |",
             "|" + "|".join("---:" if key in numeric else "---" for key in keys) + "|"]
    for row in rows:
        cells = []
        for key in keys:
            if key not in row:
                raise KeyError(f"table(): a row has no column {key!r} (it has {', '.join(map(str, row))})")
            value = row[key]
            cells.append(escape_markdown(FORMATTERS[formats[key]](value) if key in formats else value))
        lines.append("| " + " | ".join(cells) + " |")
    return MarkdownSafe("\n".join(lines))


def bullet_list(items: Iterable[Any], empty: str = "None.") -> MarkdownSafe:
    items = list(items or [])
    if not items:
        return MarkdownSafe(f"*{escape_markdown(empty)}*")
    return MarkdownSafe("\n".join(f"- {escape_markdown(item)}" for item in items))


ACTION_PRIORITIES = ("critical", "high", "medium", "low")


def action(text: Any, priority: str = "medium", due: Any = None, owner: str | None = None) -> MarkdownSafe:
    """An agenda item: a task-list line whose priority, due date and owner role are extracted as a
    structured action after rendering (see flows.pipeline.structure_actions)."""
    if priority not in ACTION_PRIORITIES:
        raise ValueError(f"action(): priority must be one of {', '.join(ACTION_PRIORITIES)}, got {priority!r}")
    suffix = f" — {priority} priority"
    if due is not None and is_available(due):
        suffix += f", due {(dt.date.fromisoformat(str(due)[:10]) if isinstance(due, str) else due):%Y-%m-%d}"
    if owner:
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", owner):
            raise ValueError(f"action(): owner must be a role slug like 'cto', got {owner!r}")
        suffix += f", owner {owner}"
    return MarkdownSafe(f"- [ ] {escape_markdown(text)}{suffix}")


def days_after(day: Any, days: int) -> dt.date:
    return (dt.date.fromisoformat(day[:10]) if isinstance(day, str) else day) + dt.timedelta(days=days)


def _finalize(value: Any) -> str:
    return escape_markdown(value)


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(money=money, number=number, percent=percent, months=months, date=date,
                       table=table, bullet_list=bullet_list, action=action, days_after=days_after)
    env.filters.update(money=money, number=number, percent=percent, months=months, date=date)
    env.tests["available"] = is_available
    return env


@lru_cache(maxsize=1)
def plain_environment() -> SandboxedEnvironment:
    """For subjects and check messages: plain text, same helpers, no Markdown escaping."""
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.globals.update(environment().globals)
    env.filters.update(money=money, number=number, percent=percent, months=months, date=date)
    env.tests["available"] = is_available
    return env


# ---- static analysis: which metrics does a template use? --------------------------------------------


def metric_references(tree: nodes.Node, namespaces: set[str]) -> list[tuple[str, int]]:
    """Every ``ns.name`` (or ``x.ns.name``, ``ns['name']``) in a parsed template, with its line."""
    found: list[tuple[str, int]] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        base = node.node
        if isinstance(base, nodes.Name):
            base_name = base.name
        elif isinstance(base, nodes.Getattr):
            base_name = base.attr
        elif isinstance(base, nodes.Getitem) and isinstance(base.arg, nodes.Const):
            base_name = base.arg.value
        else:
            continue
        if base_name not in namespaces:
            continue
        if isinstance(node, nodes.Getattr):
            leaf = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            leaf = node.arg.value
        else:
            continue
        found.append((f"{base_name}.{leaf}", node.lineno))
    return found
