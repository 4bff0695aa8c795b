"""Jinja for report writers: sandboxed, strict, and safe with data.

Every ``{{ value }}`` passes through ``finalize``: data becomes literal text in the Markdown (it can
never add a heading, link, table cell or HTML), while helpers such as ``table()`` return
``MarkdownSafe`` output that is trusted because the helper escaped each cell itself.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import string
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache, wraps
from typing import Any

from jinja2 import StrictUndefined, nodes, pass_context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer

from flows.errors import TemplateLimitError
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


def _decimal(value: Any, digits: int = 0) -> Decimal:
    """A number to format. Decimal("1e999999999") is legal, and writing it out in full would take
    minutes and a gigabyte: amounts and digit counts beyond any report's needs are refused."""
    amount = Decimal(str(value))
    if amount.is_finite() and amount.adjusted() > 60:
        raise ValueError(f"{_short(value)} is too large to format")
    if not 0 <= digits <= 20:
        raise ValueError(f"digits must be between 0 and 20, got {digits!r}")
    return amount


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
    digits = 2 if cents else 0
    amount = _decimal(value, digits)
    sign = "-" if amount < 0 else ""
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
    return _no_negative_zero(f"{_decimal(value, digits):,.{digits}f}")


def percent(value: Any, digits: int = 0) -> str:
    """``value`` is a fraction: 0.125 -> 12.5% with digits=1."""
    if not is_available(value):
        return _unavailable_text(value)
    if value is None:
        return "—"
    return _no_negative_zero(f"{_decimal(value, digits) * 100:,.{digits}f}%")


def months(value: Any, digits: int = 1) -> str:
    if not is_available(value):
        return _unavailable_text(value)
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "no burn (cash is not decreasing)"
    return _no_negative_zero(f"{_decimal(value, digits):,.{digits}f}") + " months"


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
        suffix += f", due {_as_date(due, 'action(): due'):%Y-%m-%d}"
    if owner:
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", owner):
            raise ValueError(f"action(): owner must be a role slug like 'cto', got {owner!r}")
        suffix += f", owner {owner}"
    return MarkdownSafe(f"- [ ] {escape_markdown(text)}{suffix}")


def _as_date(value: Any, what: str) -> dt.date:
    """A date, or an ISO date text (a timestamp's date part counts); anything else is an error quoting the
    value whole, so the author sees what they wrote."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            try:
                return dt.datetime.fromisoformat(value).date()
            except ValueError:
                pass
    raise ValueError(f"{what} must be a date like 2026-11-30 or days_after(period.end, 14), got {value!r}")


def agenda_items(rows: Any, text: str, priority: str, due: dt.date, owner: str) -> list[dict[str, Any]]:
    """Rows (handoff items, ...) as agenda items for ``agenda()``."""
    if priority not in ACTION_PRIORITIES:
        raise ValueError(f"todos(): priority must be one of {', '.join(ACTION_PRIORITIES)}, got {priority!r}")
    items = []
    for row in rows if is_available(rows) else []:
        fields = row if isinstance(row, Mapping) else {"text": row}
        try:
            filled = text.format_map({k: v for k, v in fields.items() if isinstance(k, str)})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"todos(): cannot fill {text!r} from {sorted(fields)}: {exc}") from None
        items.append({"fix": filled, "priority": priority, "due": due.isoformat(), "owner": owner})
    return items


def agenda(checks: Any, *more: Any, empty: str = "Nothing open.", limit: int | None = None) -> MarkdownSafe:
    """The agenda of fired checks (their ``fix``, ``owner`` and due date from the front matter) plus any
    ``todos(...)``, most urgent first (critical, high, medium, low; checks before other items of the same
    priority), as task-list lines the run turns into structured actions."""
    items = []
    for check in checks if is_available(checks) else []:
        priority = "low" if check["severity"] == "info" else check["severity"]
        items.append((ACTION_PRIORITIES.index(priority), 0, check.get("fix") or check["message"], priority,
                      check.get("due") or None, check.get("owner") or None))
    for rank, extra in enumerate(more, start=1):
        for item in extra or []:
            items.append((ACTION_PRIORITIES.index(item["priority"]), rank, item["fix"], item["priority"],
                          item["due"], item["owner"]))
    items.sort(key=lambda item: item[:2])  # stable: the order within a group is kept
    if limit is not None:
        items = items[:limit]
    if not items:
        return MarkdownSafe(escape_markdown(empty)) if empty else MarkdownSafe("")
    return MarkdownSafe("\n".join(action(text, priority, due, owner) for _, _, text, priority, due, owner in items))


def rank_checks(checks: Any, n: int = 8, impact: Iterable[str] = (), entities: Any = None) -> TopRows:
    """The ``n`` most critical fired checks: by severity (critical first), then by where the check's id
    stands in ``impact`` (the report's own order of business impact; ids it does not list come after), then,
    given ``entities`` (the report's tenants), the entity needing the most attention first, then in the
    order given. Like ``top()`` the result has ``.more``; ``.rest`` summarises the checks left out,
    one row per check id in the same ranking: {id, severity, fix, entities (tenant names), count}, so a
    report can say "and 14 more" with a compact list under it."""
    from flows.definitions import SEVERITIES

    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"rank_checks(): n must be a whole number >= 0, got {n!r}")
    order = {check_id: index for index, check_id in enumerate(impact or [])}
    attention = {entity["id"]: entity.get("attention", 0) for entity in entities or []}
    rows = list(checks or []) if is_available(checks) else []
    rows.sort(key=lambda c: (SEVERITIES.index(c["severity"]), order.get(c["id"], len(order)),
                             -attention.get(c.get("tenant"), 0)))  # stable: ties keep their order
    shown = TopRows(rows[:n])
    shown.total, shown.more = len(rows), max(0, len(rows) - n)
    groups: dict[str, dict[str, Any]] = {}
    for check in rows[n:]:
        group = groups.setdefault(check["id"], {"id": check["id"], "severity": check["severity"],
                                                "fix": check.get("fix") or check["message"], "entities": [],
                                                "count": 0})
        group["count"] += 1
        if check["tenant_name"] not in group["entities"]:
            group["entities"].append(check["tenant_name"])
    shown.rest = list(groups.values())
    return shown


def _strict_lookup(row: Any, path: str, helper: str) -> Any:
    """``_lookup`` for aggregate helpers: a path the row does not have is an author's mistake (an
    undeclared metric or a typo), never a silent zero."""
    value = row
    for part in path.split("."):
        if isinstance(value, Mapping):
            if part not in value:
                name = row.get("name", "") if isinstance(row, Mapping) else ""
                raise ValueError(f"{helper}(): no {path!r} on {name or 'a row'}: a metric path like "
                                 f"'finance.burn_rate' that the report declares")
            value = value[part]
        else:
            value = getattr(value, part)
        if not is_available(value):
            return value
    return value


def total(rows: Any, path: str) -> Any:
    """``total(tenants, "finance.burn_rate")``: the sum over the rows whose value is available (say which
    are left out with ``unavailable_in``)."""
    result = 0
    for row in rows or []:
        value = _strict_lookup(row, path, "total")
        if value is None or not is_available(value):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValueError(f"total(): {path!r} is not a number (got {value!r}); count(rows, path) counts list items")
        result += value
    return result


def count(rows: Any, path: str) -> int:
    """``count(tenants, "aws.s3_buckets")``: how many items the rows' lists hold in all (unavailable left out)."""
    result = 0
    for row in rows or []:
        value = _strict_lookup(row, path, "count")
        if value is None or not is_available(value):
            continue
        if isinstance(value, str) or not hasattr(value, "__len__"):
            raise ValueError(f"count(): {path!r} is not a list (got {value!r}); total(rows, path) adds numbers")
        result += len(value)
    return result


def unavailable_in(rows: Any, *paths: str) -> list[Any]:
    """The rows for which any of ``paths`` is unavailable, e.g. for "the totals leave out ..."."""
    return [row for row in rows or []
            if any(not is_available(_strict_lookup(row, path, "unavailable_in")) for path in paths)]


def days_after(day: Any, days: int) -> dt.date:
    if not isinstance(days, int) or isinstance(days, bool):
        raise ValueError(f"days_after(): the number of days must be a whole number, got {days!r}")
    return _as_date(day, "days_after(): the day") + dt.timedelta(days=days)


def _finalize(value: Any) -> str:
    return escape_markdown(value)


# ---- resource limits ------------------------------------------------------------------------------
#
# A report file is reviewed, but a mistake in it must cost that report, not the run. Work in a
# template is bounded three ways: every loop iteration and every call checks the render's CPU time
# (``limits.render_seconds``); values cannot grow past ``limits.render_bytes`` (operators, string
# methods and filters that multiply their input are checked before they allocate); integers stay
# under MAX_INT_BITS, so one ``**`` cannot hold the interpreter for minutes. The intercepted
# operators are also never folded at compile time (Jinja skips constant folding of intercepted
# operators in a sandbox), so ``{{ 9**(9**9) }}`` is refused when rendered, not computed when loaded.

DEFAULT_RENDER_SECONDS = 10.0
DEFAULT_RENDER_BYTES = 5_000_000
MAX_INT_BITS = 4096  # about 1,200 decimal digits: far beyond any money amount
MAX_RANGE = 10_000  # items in one range(); loops over data are bounded by the data


@dataclass
class RenderBudget:
    """The limits of one report's render. Time is the CPU time of the rendering thread: reports render
    side by side, and a runaway one must not make its neighbours look slow."""

    seconds: float | None
    max_bytes: int
    started: float = field(default_factory=time.thread_time)
    _next_check: float = 0.0
    # What lists and dicts gained through +, append, extend, update, ...: one reference to a large
    # text costs its length, since writing the container out writes the text each time.
    grown: int = 0

    def check_time(self) -> None:
        if self.seconds is not None and time.thread_time() - self.started > self.seconds:
            raise TemplateLimitError(f"the render took longer than {self.seconds:g} s (limits.render_seconds)")

    def tick(self) -> None:
        """Called on every loop iteration and call: a cheap wall clock decides when to read the
        (slower) thread CPU clock, at most every 20 ms."""
        if self.seconds is None:
            return
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + 0.02
            self.check_time()

    def grow(self, size: int, what: str) -> None:
        self.grown += size
        self.check_size(self.grown, what)

    def check_size(self, size: int, what: str) -> None:
        if size > self.max_bytes:
            raise TemplateLimitError(f"{what} would be {size:,} long, over the limit of {self.max_bytes:,} "
                                     "(limits.render_bytes)")


_NO_TIME_LIMIT = RenderBudget(None, DEFAULT_RENDER_BYTES)  # outside build_report: checks, previews, tests
_BUDGET: ContextVar[RenderBudget | None] = ContextVar("exec_reports_render_budget", default=None)


def _budget() -> RenderBudget:
    return _BUDGET.get() or _NO_TIME_LIMIT


@contextmanager
def render_budget(seconds: float | None = DEFAULT_RENDER_SECONDS,
                  max_bytes: int = DEFAULT_RENDER_BYTES) -> Iterator[RenderBudget]:
    """Limits for the templates rendered in this block (this thread or task only)."""
    budget = RenderBudget(seconds, max_bytes)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def render_within_limits(template: Any, context: Mapping[str, Any]) -> str:
    """``template.render(**context)``, stopped as soon as the output outgrows the budget."""
    budget = _budget()
    chunks: list[str] = []
    length = 0
    for chunk in template.generate(**context):
        length += len(chunk)
        if length > budget.max_bytes:  # characters <= bytes, so this is a lower bound
            budget.check_size(length, "the rendered report")
        chunks.append(chunk)
    text = "".join(chunks)
    budget.check_size(len(text.encode("utf-8", "surrogatepass")), "the rendered report")
    budget.check_time()
    return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_SEQUENCES = (str, bytes, list, tuple)
_CONTAINERS = (str, bytes, list, tuple, dict, set, frozenset)
_NESTED = (list, tuple, dict, set, frozenset)


def written_size(value: Any, limit: int, depth: int = 0) -> int:
    """About how long ``str(value)`` would be: a text its length, a container its items, counting a
    text again for every reference to it. Stops counting once past ``limit``."""
    if isinstance(value, str | bytes):
        return len(value)
    if not isinstance(value, _NESTED):
        return 1
    if depth > 50:  # a container nested this deep (or inside itself) is refused outright
        return limit + 1
    total = 2
    for item in value.items() if isinstance(value, dict) else value:
        total += 2 + written_size(item, limit - total, depth + 1)
        if total > limit:
            break
    return total
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent_format(text: str, budget: RenderBudget) -> None:
    for match in _PERCENT_FIELD.finditer(text):
        for number in match.groups():
            if number == "*":
                raise TemplateLimitError("'*' widths in % formatting are not allowed in report templates")
            if number and int(number) > budget.max_bytes:
                budget.check_size(int(number), "a formatted field")


def _check_brace_format(text: str, budget: RenderBudget) -> None:
    for _, _, spec, _ in string.Formatter().parse(text):
        if not spec:
            continue
        if "{" in spec:
            raise TemplateLimitError("nested fields in a format spec are not allowed in report templates")
        for number in re.findall(r"\d+", spec):
            budget.check_size(int(number), "a formatted field")


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


class _BudgetedLoops(NodeTransformer):
    """Routes every ``for`` loop's iterable through the deadline check, and every ``~`` concatenation
    through the size check, by wrapping them in internal filters before code generation."""

    def __init__(self, environment: LimitedSandbox):
        self.environment = environment

    def _wrap(self, node: nodes.Expr, name: str) -> nodes.Filter:
        wrapped = nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)
        wrapped.set_environment(self.environment)
        return wrapped

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._wrap(node.iter, "_exec_reports_budgeted_iteration")
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._wrap(node, "_exec_reports_bounded_text")


@pass_context
def _budgeted_iteration(context: Any, iterable: Any) -> Any:
    budget = _budget()
    if budget.seconds is None:
        return iterable
    return _iterate_with_ticks(iterable, budget.tick)


def _iterate_with_ticks(iterable: Any, tick: Any) -> Iterator[Any]:
    for item in iterable:
        tick()
        yield item


@pass_context
def _bounded_text(context: Any, value: Any) -> Any:
    _budget().check_size(len(value), "a joined text")
    return value


def _budgeted_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateLimitError(f"range() of {len(numbers):,} items is over the limit of {MAX_RANGE:,}")
    return numbers


# Filters whose output can be much larger than their input, checked before they run.
def _estimate_filter_output(name: str, args: tuple, kwargs: dict) -> int:
    def arg(index: int, key: str, default: Any) -> Any:
        return args[index] if len(args) > index else kwargs.get(key, default)

    value = args[0] if args else ""
    if name == "indent":
        width = arg(1, "width", 4)
        unit = len(width) if isinstance(width, str) else int(width)
        return len(str(value)) + (str(value).count("\n") + 1) * unit
    if name == "wordwrap":
        width, wrapstring = max(int(arg(1, "width", 79)), 1), arg(4, "wrapstring", None) or "\n"
        return len(str(value)) + (len(str(value)) // width + 1) * len(str(wrapstring))
    if name == "replace":
        text, old, new = str(value), str(arg(1, "old", "")), str(arg(2, "new", ""))
        count = text.count(old) if old else len(text) + 1
        return len(text) + count * max(0, len(new) - len(old))
    return 0


def _limited_filter(name: str, function: Any) -> Any:
    @wraps(function)
    def limited(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.tick()
        # Skip a pass_context/pass_environment first argument.
        data_args = args[1:] if getattr(function, "jinja_pass_arg", None) is not None else args
        for extra in (*data_args[1:], *kwargs.values()):
            if isinstance(extra, int) and not isinstance(extra, bool) and extra > budget.max_bytes:
                budget.check_size(extra, f"an argument of the {name} filter")
        if name == "format" and data_args and isinstance(data_args[0], str):
            _check_percent_format(data_args[0], budget)
        elif name in ("join", "sum") and data_args:
            items = list(data_args[0])
            if name == "sum" and not all(isinstance(item, int | float | Decimal) for item in items):
                if kwargs.get("attribute") is None and len(data_args) < 2:
                    raise TemplateLimitError("the sum filter adds numbers only in report templates")
            if name == "join":
                separator = data_args[1] if len(data_args) > 1 else kwargs.get("d", "")
                size = sum(written_size(item, budget.max_bytes) for item in items)
                budget.check_size(size + len(str(separator)) * max(len(items) - 1, 0), "a joined text")
            args = (*args[: len(args) - len(data_args)], items, *data_args[1:])
        elif name in ("indent", "wordwrap", "replace"):
            budget.check_size(_estimate_filter_output(name, data_args, kwargs), f"the output of {name}")
        elif name in ("batch", "slice"):
            fill = data_args[2] if len(data_args) > 2 else kwargs.get("fill_with")
            count = data_args[1] if len(data_args) > 1 else kwargs.get("linecount", kwargs.get("slices", 1))
            if fill is not None and isinstance(count, int):
                budget.check_size(written_size(fill, budget.max_bytes) * count, f"the output of {name}")
        result = function(*args, **kwargs)
        if isinstance(result, _CONTAINERS):
            budget.check_size(len(result), f"the output of {name}")
        return result

    return limited


# str methods that multiply their input; translate and expandtabs have no place in a report.
_STR_GROWING = {"ljust", "rjust", "center", "zfill"}
_STR_REFUSED = {"translate", "maketrans", "expandtabs"}
_MUTATORS = {"append", "extend", "insert", "update", "setdefault", "add", "fromkeys"}


class LimitedSandbox(SandboxedEnvironment):
    """Jinja's sandbox plus the resource limits above."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals["range"] = _budgeted_range
        self.globals.pop("lipsum", None)  # lipsum(n) writes n paragraphs: nothing a report needs
        self.filters = {name: _limited_filter(name, function) for name, function in self.filters.items()}
        self.filters["_exec_reports_budgeted_iteration"] = _budgeted_iteration
        self.filters["_exec_reports_bounded_text"] = _bounded_text

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        _BudgetedLoops(self).visit(source)
        return super()._generate(source, name, filename, defer_init=defer_init)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        budget.tick()
        if operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
                if _int_bits(left) * right > MAX_INT_BITS:
                    raise TemplateLimitError(f"{_short(left)} ** {_short(right)} is too large: report templates "
                                             f"allow integers up to {MAX_INT_BITS} bits")
        elif operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                if _int_bits(left) + _int_bits(right) > MAX_INT_BITS:
                    raise TemplateLimitError(f"{_short(left)} * {_short(right)} is too large: report templates "
                                             f"allow integers up to {MAX_INT_BITS} bits")
            elif isinstance(left, _SEQUENCES) and isinstance(right, int):
                budget.check_size(written_size(left, budget.max_bytes) * right, f"{_short(left)} * {right}")
            elif isinstance(right, _SEQUENCES) and isinstance(left, int):
                budget.check_size(written_size(right, budget.max_bytes) * left, f"{left} * {_short(right)}")
        elif operator == "+":
            if isinstance(left, str | bytes) and isinstance(right, str | bytes):
                budget.check_size(len(left) + len(right), "a joined value")
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                # Building a list in a loop adds the smaller side each time: count what is added.
                smaller = min(left, right, key=len)
                budget.check_size(len(left) + len(right), "a joined list")
                budget.grow(written_size(smaller, budget.max_bytes), "the lists built by the template")
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left, budget)
        result = self.binop_table[operator](left, right)
        if operator == "%" and isinstance(result, str):
            budget.check_size(len(result), "a formatted text")
        return result

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in _STR_REFUSED:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        _check_brace_format(value.__self__, _budget())
        return wrapped

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's form
        budget = _budget()
        budget.tick()
        owner = getattr(__obj, "__self__", None)
        method = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if method in _STR_GROWING and args and isinstance(args[0], int):
                budget.check_size(args[0], f"str.{method}()")
            elif method == "join" and args:
                items = list(args[0])
                size = sum(len(item) if isinstance(item, str) else 0 for item in items)
                budget.check_size(size + len(owner) * max(len(items) - 1, 0), "a joined text")
                args = (items, *args[1:])
            elif method == "replace" and len(args) >= 2:
                budget.check_size(_estimate_filter_output("replace", (owner, *args), {}), "str.replace()")
        elif isinstance(owner, list | dict | set) and method in _MUTATORS:
            added = sum(written_size(value, budget.max_bytes) for value in (*args, *kwargs.values()))
            budget.grow(added, "the lists built by the template")
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, _NESTED):
            budget.check_size(written_size(result, budget.max_bytes), f"the result of {method or 'a call'}()")
        elif isinstance(result, str | bytes):
            budget.check_size(len(result), f"the result of {method or 'a call'}()")
        if isinstance(owner, list | dict | set):  # list.extend, dict.update, ... grow the receiver
            budget.check_size(len(owner), f"a {type(owner).__name__}")
        return result

    @staticmethod
    def concat(chunks: Iterable[str]) -> str:
        """Joins the output of macros, call blocks and ``{% set %}`` blocks: checked before joining."""
        chunks = list(chunks)
        _budget().check_size(sum(map(len, chunks)), "a block's output")
        return "".join(chunks)


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    env = LimitedSandbox(
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
                       rule_name=rule_name, names=names, total=total, count=count, unavailable_in=unavailable_in)
    env.filters.update(money=money, number=number, percent=percent, months=months, date=date, top=top,
                       rule_name=rule_name, label=label)
    env.tests["available"] = is_available
    env.globals["rank_checks"] = rank_checks  # kept apart from the update() above to keep merges clean
    return env


@lru_cache(maxsize=1)
def plain_environment() -> SandboxedEnvironment:
    """For subjects and check messages: plain text, same helpers, no Markdown escaping."""
    env = LimitedSandbox(undefined=StrictUndefined, autoescape=False)
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
    # Metric paths given as text to the aggregate helpers: total(tenants, "finance.burn_rate").
    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name in PATH_HELPERS):
            continue
        for argument in [*call.args, *(keyword.value for keyword in call.kwargs)]:
            if isinstance(argument, nodes.Const) and isinstance(argument.value, str) and "." in argument.value:
                namespace = argument.value.split(".", 1)[0]
                if namespace in namespaces:
                    found.append((".".join(argument.value.split(".")[:2]), call.lineno))
    return found


# Helpers that take a metric path as text; the compile step checks those paths like any other reference.
PATH_HELPERS = frozenset({"total", "count", "unavailable_in", "totals_by", "top"})


# ---- compiled-template cache ----------------------------------------------------------------------
#
# Parsing, the limits transform above (_BudgetedLoops), code generation and compile() cost most of
# loading the report definitions, and give the same code for the same source. The code object and the
# metric references are kept in the on-disk cache (flows/cache.py) under a key that covers the
# source, the file name shown in tracebacks, which environment, the metric namespaces, this module's
# source (the sandbox and its limits), Jinja's version and Python's bytecode version.

COMPILATIONS = {"compiled": 0, "cached": 0}  # templates compiled vs. loaded from the cache (tests count them)
_ENVIRONMENT_KINDS = ("markdown", "plain")


@lru_cache(maxsize=1)
def _sandbox_fingerprint() -> str:
    import importlib.util
    import sys

    import jinja2

    from flows import cache

    return cache.cache_key(importlib.util.MAGIC_NUMBER, sys.version, jinja2.__version__,
                           cache.source_fingerprint(sys.modules[__name__], cache))


def compile_report_template(kind: str, source: str, filename: str | None, namespaces: Iterable[str], *,
                            expression: bool = False) -> tuple[Any, list[tuple[str, int]]]:
    """A report template (or, with ``expression``, a ``send_if``/``when`` expression) compiled in the
    ``kind`` environment ("markdown": ``environment()``, "plain": ``plain_environment()``), with the
    metrics it references. Raises TemplateSyntaxError like ``parse`` does."""
    import marshal

    from jinja2.environment import TemplateExpression

    from flows import cache

    if kind not in _ENVIRONMENT_KINDS:
        raise ValueError(f"unknown template environment {kind!r}")
    env = environment() if kind == "markdown" else plain_environment()
    namespaces = sorted(namespaces)
    # Jinja resolves filter and test names when it compiles (an unknown one is a compile error), so
    # the names the environment has are part of the key too.
    key = cache.cache_key(_sandbox_fingerprint(), kind, "expression" if expression else "template",
                          filename or "", ",".join(namespaces), ",".join(sorted(env.filters)),
                          ",".join(sorted(env.tests)), source)
    code = None
    payload = cache.read("templates", key)
    if payload is not None:
        try:
            references, code = marshal.loads(payload)
            references = [(str(metric), int(line)) for metric, line in references]
        except (ValueError, TypeError, EOFError):
            code = None
    if code is None:
        parsed = env.parse(f"{{{{ {source} }}}}" if expression else source)
        references = metric_references(parsed, set(namespaces))
        if expression:
            code = env.compile(_expression_tree(env, source))
        else:
            # The tree parsed above, not the source a second time; the file's name in the code object is
            # how a run-time error is traced back to its line (see flows.definitions.error_line).
            code = env.compile(parsed, filename=filename)
        COMPILATIONS["compiled"] += 1
        cache.write("templates", key, marshal.dumps((references, code)))
    else:
        COMPILATIONS["cached"] += 1
    template = env.template_class.from_code(env, code, env.make_globals(None), None)
    return (TemplateExpression(template, False) if expression else template), references


def _expression_tree(env: SandboxedEnvironment, source: str) -> nodes.Template:
    """What ``Environment.compile_expression`` compiles: ``result = <expression>``."""
    from jinja2.exceptions import TemplateSyntaxError
    from jinja2.parser import Parser

    parser = Parser(env, source, state="variable")
    expr = parser.parse_expression()
    if not parser.stream.eos:
        raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno, None, None)
    expr.set_environment(env)
    return nodes.Template([nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)], lineno=1)
