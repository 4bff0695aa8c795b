"""Helpers that lay out rows: ``table``, ``bullet_list``, ``top`` (the n that matter most, remembering how
many were left out), ``more``, ``names``, ``plural``, ``label``, ``rule_name``, and the portfolio
aggregates ``total``, ``count``, ``totals_by`` and ``unavailable_in``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from flows.templating.escape import MarkdownSafe, escape_markdown
from flows.templating.formatters import FORMATTERS, number, plural, unavailable_text
from flows.templating.lines import fill_line
from sources.registry import REGISTRY, is_available, metric_words

# What report templates call (the helper reference in the docs lists these).
__all__ = ["table", "ranked_table", "rows_of", "bullet_list", "top", "more", "names", "plural", "label", "rule_name", "total", "count",
           "totals_by", "unavailable_in", "TopRows"]


class TopRows(list):
    """The first ``n`` rows of a ranking, remembering how many were left out (``more``) and of how
    many (``total``), so ``table()`` and templates can say "and 12 more"."""

    more: int = 0
    total: int = 0
    rest_totals: dict = {}  # ranked_table: the left-out rows' totals per money/number column
    lines: int = 0  # error_messages: the error lines the distinct messages were read from


def lookup(row: Any, path: str) -> Any:
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
        present = [r for r in rows if lookup(r, by) is not None and is_available(lookup(r, by))]
        missing = [r for r in rows if not (lookup(r, by) is not None and is_available(lookup(r, by)))]
        present.sort(key=lambda r: lookup(r, by), reverse=reverse)  # stable: ties keep their order
        rows = present + missing
    shown = TopRows(rows[:n])
    shown.total = len(rows)
    shown.more = max(0, len(rows) - n)
    return shown


def totals_by(tenants: Any, metric: str, by: str, fields: Iterable[str], keep: Iterable[str] = (),
              ratios: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Portfolio totals of a per-tenant table metric: ``totals_by(tenants, "finance.monthly", "month",
    ["revenue", "expenses"])`` sums each field per month across the tenants whose metric is available,
    sorted by ``by``; each row also has ``entities`` (how many tenants contributed). ``keep``: fields
    taken as they are from the first row of each group (a label beside a numeric key). ``ratios``: a
    field worked from two summed fields, ``{"cac": ["spend", "customers"]}`` -> spend / customers to the
    cent (None where the second is 0), so a ratio of totals is never an average of ratios."""
    fields, keep = list(fields), list(keep)
    grouped: dict[Any, dict[str, Any]] = {}
    for tenant in tenants or []:
        rows = lookup(tenant, metric)
        if rows is None or not is_available(rows):
            continue
        for row in rows:
            key = row[by]
            total = grouped.setdefault(key, {by: key, **{name: row.get(name) for name in keep}, "entities": 0,
                                             **{f: 0 for f in fields}})
            total["entities"] += 1
            for name in fields:
                value = row.get(name)
                if value is not None and is_available(value):
                    total[name] += value
    for name, pair in (ratios or {}).items():
        top_field, bottom_field = pair
        for total in grouped.values():
            bottom = total.get(bottom_field)
            total[name] = (Decimal(str(total[top_field])) / Decimal(str(bottom))).quantize(Decimal("0.01")) \
                if bottom else None
    return [grouped[key] for key in sorted(grouped)]


def rule_name(rule: Any) -> str:
    """A rule's plain name as its source registered it (``min_reserve_months`` -> "cash reserve"), else its
    id in words."""
    return REGISTRY.labels.get(str(rule), str(rule).replace("_", " "))


def label(metric: Any) -> str:
    """A metric id as words for an executive: ``finance.break_even_units`` -> "Break even units"."""
    return metric_words(metric)


def names(items: Any, limit: int = 5, attribute: str = "name", entity: bool = False, line: str | None = None,
          sep: str | None = None, more_text: str = "more", where: str = "") -> str:
    """"A, B and C", or "A, B, C, D, E and 20 more" past ``limit``: a list of entities in a sentence
    that stays short however large the portfolio. ``entity=true`` adds each row's entity (from
    ``rows_of``): "jada-site (JADA)". ``line``: each item written from a pattern instead of one attribute,
    "{name} **{aws.last_month_cost:money_cents}**" (see ``bullet_list``); rows cut by ``top()`` then end with
    "and 2 more" too (``more_text`` "more entity|more entities", ``where`` says where they are). ``sep``:
    every item after ``sep`` instead of ", " and a last " and ": "A; B; and 2 more"."""
    if line is not None:
        values = [fill_line(item, line) for item in (items or [])]
    else:
        values = [str(lookup(item, attribute) if isinstance(item, Mapping) else item)
                  + (f" ({item['entity']})" if entity and isinstance(item, Mapping) and item.get("entity") else "")
                  for item in (items or [])]
    left_out = max(0, len(values) - limit) + (getattr(items, "more", 0) if line is not None else 0)
    values = values[:limit]
    rest = f"and {left_out:,} {more_words(left_out, more_text)}" + (f" {where}" if where else "") if left_out else ""
    if line is not None:
        rest = escape_markdown(rest)
    if sep is not None:
        text = sep.join(values + ([rest] if rest else []))
    elif rest:
        text = ", ".join(values) + " " + rest
    elif len(values) > 1:
        text = ", ".join(values[:-1]) + " and " + values[-1]
    else:
        text = values[0] if values else ""
    return MarkdownSafe(text) if line is not None else text


def more_words(count: int, what: str) -> str:
    """``what`` may be "more entity|more entities": the singular is used for one."""
    singular, _, plural_form = what.partition("|")
    return singular if count == 1 or not plural_form else plural_form


def more(rows: Any, what: str = "more", where: str = "") -> str:
    """"and 12 more" (plus ``where`` to find them, e.g. "in each entity's GM brief"), or "" if none.
    ``what`` may give both forms: "more entity|more entities"."""
    count = getattr(rows, "more", 0)
    if not count:
        return ""
    return f"and {count:,} {more_words(count, what)}" + (f" {where}" if where else "")


def table(rows: Any, columns: Any = None, formats: Mapping[str, str] | None = None,
          empty: str = "Nothing to show.", limit: int | None = None, more_text: str = "more") -> MarkdownSafe:
    """A Markdown table from a list of mappings. ``columns``: keys, or a mapping key -> header.

    ``formats`` maps a key to a helper name (money, money_cents, number, percent, months, date).
    ``limit``: show at most that many rows; like rows from ``top()``, the table then ends with an
    "and N more" row (``more_text`` names what: "more months", "more entities").
    """
    if not is_available(rows):
        return MarkdownSafe(f"*{escape_markdown(unavailable_text(rows))}*")
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
    numeric = {key for key, name in formats.items()
               if name in ("money", "money_cents", "number", "percent", "percent_number", "months", "count",
                           "duration_ms")}
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
        words = escape_markdown(more_words(left_out, more_text))
        rest = getattr(rows, "rest_totals", {}) if limit is None else {}
        cells = [escape_markdown(_sum_text(rest[key], formats[key])) if key in rest else "" for key in keys[1:]]
        lines.append("| " + " | ".join([f"*and {left_out:,} {words}*", *cells]) + " |")
    return MarkdownSafe("\n".join(lines))


def ranked_table(rows: Any, by: str, columns: Any, formats: Mapping[str, str] | None = None, n: int = 5,
                 reverse: bool = True, more_text: str = "more", empty: str = "Nothing to show.",
                 total: bool = False, marked: Any = ()) -> MarkdownSafe:
    """The ``n`` rows that matter most by ``by`` (highest first; ``reverse=False`` for lowest first), then
    one row for the rest: "and 12 more" with the rest's totals in the money and number columns; with
    ``total=true`` a last "Total" row. Totals add the figures as shown (money to the dollar), so every
    total equals the sum of the rows above it. Rows in ``marked`` (e.g. the entities whose figures leave
    something out) get a "*" after their first cell, for a footnote that says what.

    ``{{ ranked_table(tenants, "finance.runway_months", {"name": "Entity", "finance.cash_on_hand": "Cash"},
    formats={"finance.cash_on_hand": "money"}, reverse=false, total=true) }}``: a column key may be a
    metric path."""
    formats = dict(formats or {})
    keys = list(columns.keys()) if isinstance(columns, Mapping) else list(columns)
    ranked = top(rows, len(list(rows or [])) if is_available(rows) else 0, by, reverse)
    marked_ids = [id(row) for row in marked or []]
    flat = [{key: lookup(row, key) for key in keys} for row in ranked]
    for row, original in zip(flat, ranked, strict=True):
        if id(original) in marked_ids:
            row[keys[0]] = MarkdownSafe(escape_markdown(row[keys[0]]) + " \\*")
    summable = [key for key, name in formats.items() if name in ("money", "money_cents", "number", "count")]
    shown = TopRows(flat[:n])
    shown.total, shown.more = len(flat), max(0, len(flat) - n)
    shown.rest_totals = {key: value for key in summable
                         if (value := _shown_sum(flat[n:], key, formats[key])) is not None} if shown.more else {}
    headers = dict(columns) if isinstance(columns, Mapping) else {key: key for key in keys}
    text = table(shown, headers, formats, empty=empty, more_text=more_text)
    if total and flat:
        cells = [escape_markdown(_sum_text(_shown_sum(flat, key, formats[key]), formats[key]))
                 if key in summable and _shown_sum(flat, key, formats[key]) is not None else "" for key in keys[1:]]
        text = MarkdownSafe(text + "\n| " + " | ".join(["Total", *cells]) + " |")
    return text


def _sum_text(value: Any, format_name: str) -> str:
    """A column's total in the column's format (a ``count`` column's total is a plain number)."""
    return number(value) if format_name == "count" else FORMATTERS[format_name](value)


def _shown_sum(rows: list[dict[str, Any]], key: str, format_name: str) -> Any:
    """The column's sum as an email shows it: each available figure rounded as its format shows it."""
    present = [row[key] for row in rows if row[key] is not None and is_available(row[key])]
    if not present:
        return None
    if format_name == "count":
        return sum(len(value) for value in present)
    digits = 2 if format_name == "money_cents" else 0
    return sum(round(Decimal(str(value)), digits) for value in present)


def rows_of(tenants: Any, metric: str) -> list[dict[str, Any]]:
    """Every row of a per-entity table metric, across the entities whose metric is available, each with
    its ``entity`` (name) added: ``rows_of(tenants, "costs.domain_renewals")``."""
    rows = []
    for tenant in tenants or []:
        value = strict_lookup(tenant, metric, "rows_of")
        if value is None or not is_available(value):
            continue
        rows.extend({"entity": tenant.get("name", ""), **row} for row in value)
    return rows


def bullet_list(items: Iterable[Any], empty: str = "None.", limit: int | None = None,
                more_text: str | None = "more", line: str | None = None, where: str = "") -> MarkdownSafe:
    """One bullet per item, then "and 4 more" for the items ``top()`` or ``limit`` left out (``more_text``
    "more domain|more domains"; ``where`` says where they are; ``more_text=none`` when the sentence before
    the list already counts them: "The 3 slowest of 10 functions"). ``line`` writes each row from a pattern
    instead of showing it whole: ``line="{name} ({entity}): **{p95_duration_ms:duration_ms}**; {invocations:plural:call}"``,
    a field being a key or metric path and, after the colon, a column format, ``plural:word|words``,
    ``counts``, and ``?, # more words`` for an optional phrase (flows/templating/lines.py)."""
    left_out = getattr(items, "more", 0)
    items = list(items or []) if is_available(items) else []
    if limit is not None:
        left_out += max(0, len(items) - limit)
        items = items[:limit]
    if not items:
        return MarkdownSafe(f"*{escape_markdown(empty)}*" if empty else "")
    lines = [f"- {fill_line(item, line) if line is not None else escape_markdown(item)}" for item in items]
    if left_out and more_text is not None:
        lines.append(f"- *and {left_out:,} {escape_markdown(more_words(left_out, more_text))}"
                     + (f" {escape_markdown(where)}" if where else "") + "*")
    return MarkdownSafe("\n".join(lines))


def strict_lookup(row: Any, path: str, helper: str) -> Any:
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
        value = strict_lookup(row, path, "total")
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
        value = strict_lookup(row, path, "count")
        if value is None or not is_available(value):
            continue
        if isinstance(value, str) or not hasattr(value, "__len__"):
            raise ValueError(f"count(): {path!r} is not a list (got {value!r}); total(rows, path) adds numbers")
        result += len(value)
    return result


def how_many(rows: Any, path: str, below: Any = None, above: Any = None) -> int:
    """How many rows have an available figure under ``below`` (or over ``above``): the distribution a
    portfolio headline gives at scale, "{{ how_many(tenants, "finance.runway_months", below=6) }} of
    {{ tenants | length }} entities have under 6 months of runway"."""
    if (below is None) == (above is None):
        raise ValueError("how_many(): give one of below= or above=")
    count_ = 0
    for row in rows or []:
        value = strict_lookup(row, path, "how_many")
        if value is None or not is_available(value) or isinstance(value, bool):
            continue
        if (below is not None and value < below) or (above is not None and value > above):
            count_ += 1
    return count_


def unavailable_in(rows: Any, *paths: str) -> list[Any]:
    """The rows for which any of ``paths`` is unavailable, e.g. for "the totals leave out ..."."""
    return [row for row in rows or []
            if any(not is_available(strict_lookup(row, path, "unavailable_in")) for path in paths)]
