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


_CODE_SPAN = re.compile(r"`([^`]+)`")
_ALWAYS_ESCAPE = re.compile(r"([\\`*_\[\]<>#|~&!])")
# Only what would start a block at the beginning of a line: "- x", "+ x", "1. x", "---", "===".
_LINE_START = re.compile(r"^(?:[-+](?=\s|$)|[-=]+\s*$|\d{1,9}(?=[.)](?:\s|$)))")


def escape_markdown(value: Any) -> str:
    """Render any data value as inert inline Markdown text."""
    if isinstance(value, MarkdownSafe):
        return value
    if isinstance(value, bool):  # never Python's True/False in an email
        return "yes" if value else "no"
    if isinstance(value, Unavailable):
        return escape_markdown(_unavailable_text(value))
    text = "—" if value is None else str(value)
    text = " ".join(text.split())  # a value is one line: no new blocks, no indented code
    # Notes written in Markdown quote code as `x`: an executive should see x, not the backticks.
    text = _CODE_SPAN.sub(r"\1", text)
    text = _ALWAYS_ESCAPE.sub(r"\\\1", text)
    match = _LINE_START.match(text)
    if match:
        if text[0].isdigit():  # "1. foo" would start an ordered list: escape the dot
            text = text[: match.end()] + "\\" + text[match.end() :]
        else:
            text = "\\" + text
    return text


# ---- formatting helpers ---------------------------------------------------------------------------


# What an executive reads instead of a technical reason. The technical reason (metric id, config key,
# file:line) goes to the run summary's warnings, the log and the operations alert (see
# flows.pipeline.unavailable_warnings); the email says only what is missing, in plain words.
_PLAIN_REASONS = (
    (re.compile(r"is not (set|configured)|not configured for tenant|no source provides|must be|did not produce"),
     "not set up yet"),
    (re.compile(r"failed|could not be read|error|timed? ?out|denied", re.IGNORECASE), "could not be read this time"),
    (re.compile(r"has no entries for|does not cover"), "the books do not cover the whole period yet"),
    (re.compile(r"costs more than it brings in"), "each sale costs more than it brings in"),
    (re.compile(r"no .* sales on account"), "no sales recorded in the period"),
)


# Marks of developer text: dotted ids and config keys, snake_case, quotes, brackets, file paths and
# file:line, exception names.
_TECHNICAL = re.compile(r"[A-Za-z0-9]\.[A-Za-z_]|_|['\"`\[\]{}<>=/\\]|:\d|[A-Z][a-z]+(Error|Exception)\b")


def plain_reason(value: Unavailable) -> str:
    """A plain-language reason for a missing figure, without ids, keys or paths ("" when none fits)."""
    plain = getattr(value, "plain", "")
    if plain:
        return plain
    for pattern, text in _PLAIN_REASONS:
        if pattern.search(value.reason):
            return text
    reason = " ".join(value.reason.split())
    if reason and not _TECHNICAL.search(reason) and len(reason) <= 80:
        return reason
    return ""


def _unavailable_text(value: Unavailable) -> str:
    reason = plain_reason(value)
    return f"not available ({reason})" if reason else "not available"


def money(value: Any, cents: bool = False, currency: str = "$") -> str:
    if not is_available(value):
        return _unavailable_text(value)
    if value is None:
        return "—"
    amount = Decimal(str(value))
    sign = "-" if amount < 0 else ""
    digits = 2 if cents else 0
    return _no_negative_zero(f"{sign}{currency}{abs(amount):,.{digits}f}")


def _no_negative_zero(text: str) -> str:
    """"-0", "-0.0" and "-$0" are zero: a rounded value never shows a minus sign without a digit behind it."""
    if text.startswith("-") and not any(ch in "123456789" for ch in text):
        return text[1:]
    return text


def number(value: Any, digits: int = 0) -> str:
    if not is_available(value):
        return _unavailable_text(value)
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return _no_negative_zero(f"{Decimal(str(value)):,.{digits}f}")


def percent(value: Any, digits: int = 0) -> str:
    """``value`` is a fraction: 0.125 -> 12.5% with digits=1."""
    if not is_available(value):
        return _unavailable_text(value)
    if value is None:
        return "—"
    return _no_negative_zero(f"{Decimal(str(value)) * 100:,.{digits}f}%")


def months(value: Any, digits: int = 1) -> str:
    if not is_available(value):
        return _unavailable_text(value)
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "no burn (cash is not decreasing)"
    return _no_negative_zero(f"{Decimal(str(value)):,.{digits}f}") + " months"


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


class TopRows(list):
    """The first ``n`` rows of a ranking, remembering how many were left out (``more``) and of how
    many (``total``), so ``table()`` and templates can say "and 12 more"."""

    more: int = 0
    total: int = 0


def _lookup(row: Any, path: str) -> Any:
    value = row
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        else:
            value = getattr(value, part, None)
        if value is None or not is_available(value):
            return value
    return value


def top(rows: Any, n: int = 10, by: str | None = None, reverse: bool = True) -> TopRows:
    """Summary-first lists: the ``n`` rows that matter most, ranked by ``by`` (a key or dotted path
    such as ``"finance.burn_rate"``; highest first, ``reverse=False`` for lowest first). Rows whose
    value is missing or unavailable rank last. Without ``by`` the order is kept.

    The result is a list with ``.more`` (rows left out) and ``.total``; ``table()`` adds an
    "and N more" row by itself, and ``{{ more(shown) }}`` writes the sentence elsewhere."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"top(): n must be a whole number >= 0, got {n!r}")
    rows = list(rows or []) if is_available(rows) else []
    if by is not None:
        present = [r for r in rows if _lookup(r, by) is not None and is_available(_lookup(r, by))]
        missing = [r for r in rows if not (_lookup(r, by) is not None and is_available(_lookup(r, by)))]
        present.sort(key=lambda r: _lookup(r, by), reverse=reverse)  # stable: ties keep their order
        rows = present + missing
    shown = TopRows(rows[:n])
    shown.total = len(rows)
    shown.more = max(0, len(rows) - n)
    return shown


def plural(count: Any, singular: str, plural_form: str | None = None) -> str:
    """``plural(3, "issue")`` -> "3 issues", ``plural(1, "entry", "entries")`` -> "1 entry": never "(s)"."""
    if not is_available(count):
        return _unavailable_text(count)
    if not isinstance(count, int) and hasattr(count, "__len__"):
        count = len(count)
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{number(count)} {word}"


def totals_by(tenants: Any, metric: str, by: str, fields: Iterable[str]) -> list[dict[str, Any]]:
    """Portfolio totals of a per-tenant table metric: ``totals_by(tenants, "finance.monthly", "month",
    ["revenue", "expenses"])`` sums each field per month across the tenants whose metric is available,
    sorted by ``by``; each row also has ``entities`` (how many tenants contributed)."""
    fields = list(fields)
    grouped: dict[Any, dict[str, Any]] = {}
    for tenant in tenants or []:
        rows = _lookup(tenant, metric)
        if rows is None or not is_available(rows):
            continue
        for row in rows:
            key = row[by]
            total = grouped.setdefault(key, {by: key, "entities": 0, **{f: 0 for f in fields}})
            total["entities"] += 1
            for name in fields:
                value = row.get(name)
                if value is not None and is_available(value):
                    total[name] += value
    return [grouped[key] for key in sorted(grouped)]


def rule_name(rule: Any) -> str:
    """A financial rule's plain name: ``min_reserve_months`` -> "cash reserve"."""
    from sources.finance_rules import RULE_LABELS

    return RULE_LABELS.get(str(rule), str(rule).replace("_", " "))


def label(metric: Any) -> str:
    """A metric id as words for an executive: ``finance.break_even_units`` -> "Break even units"."""
    short = str(metric).rsplit(".", 1)[-1].replace("_", " ").strip()
    return short[:1].upper() + short[1:]


def names(items: Any, limit: int = 5, attribute: str = "name") -> str:
    """"A, B and C", or "A, B, C, D, E and 20 more" past ``limit``: a list of entities in a sentence
    that stays short however large the portfolio."""
    values = [str(_lookup(item, attribute) if isinstance(item, Mapping) else item) for item in (items or [])]
    if len(values) > limit:
        return ", ".join(values[:limit]) + f" and {len(values) - limit:,} more"
    if len(values) > 1:
        return ", ".join(values[:-1]) + " and " + values[-1]
    return values[0] if values else ""


def _more_words(count: int, what: str) -> str:
    """``what`` may be "more entity|more entities": the singular is used for one."""
    singular, _, plural_form = what.partition("|")
    return singular if count == 1 or not plural_form else plural_form


def more(rows: Any, what: str = "more", where: str = "") -> str:
    """"and 12 more" (plus ``where`` to find them, e.g. "in each entity's GM brief"), or "" if none.
    ``what`` may give both forms: "more entity|more entities"."""
    count = getattr(rows, "more", 0)
    if not count:
        return ""
    return f"and {count:,} {_more_words(count, what)}" + (f" {where}" if where else "")


def table(rows: Any, columns: Any = None, formats: Mapping[str, str] | None = None,
          empty: str = "Nothing to show.", limit: int | None = None, more_text: str = "more") -> MarkdownSafe:
    """A Markdown table from a list of mappings. ``columns``: keys, or a mapping key -> header.

    ``formats`` maps a key to a helper name (money, money_cents, number, percent, months, date).
    ``limit``: show at most that many rows; like rows from ``top()``, the table then ends with an
    "and N more" row (``more_text`` names what: "more months", "more entities").
    """
    if not is_available(rows):
        return MarkdownSafe(f"*{escape_markdown(_unavailable_text(rows))}*")
    left_out = getattr(rows, "more", 0)
    rows = list(rows or [])
    if limit is not None:
        left_out += max(0, len(rows) - limit)
        rows = rows[:limit]
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
    if left_out:
        words = escape_markdown(_more_words(left_out, more_text))
        lines.append("| " + " | ".join([f"*and {left_out:,} {words}*"] + [""] * (len(keys) - 1)) + " |")
    return MarkdownSafe("\n".join(lines))


def bullet_list(items: Iterable[Any], empty: str = "None.", limit: int | None = None,
                more_text: str = "more") -> MarkdownSafe:
    left_out = getattr(items, "more", 0)
    items = list(items or [])
    if limit is not None:
        left_out += max(0, len(items) - limit)
        items = items[:limit]
    if not items:
        return MarkdownSafe(f"*{escape_markdown(empty)}*")
    lines = [f"- {escape_markdown(item)}" for item in items]
    if left_out:
        lines.append(f"- *and {left_out:,} {escape_markdown(_more_words(left_out, more_text))}*")
    return MarkdownSafe("\n".join(lines))


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
                       table=table, bullet_list=bullet_list, action=action, days_after=days_after,
                       top=top, more=more, plural=plural, label=label, totals_by=totals_by,
                       rule_name=rule_name, names=names)
    env.filters.update(money=money, number=number, percent=percent, months=months, date=date, top=top,
                       rule_name=rule_name, label=label)
    env.tests["available"] = is_available
    return env


@lru_cache(maxsize=1)
def plain_environment() -> SandboxedEnvironment:
    """For subjects and check messages: plain text, same helpers, no Markdown escaping."""
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.globals.update(environment().globals)
    env.filters.update(money=money, number=number, percent=percent, months=months, date=date,
                       rule_name=rule_name, label=label)
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
