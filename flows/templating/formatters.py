"""Formatting helpers a template calls: ``money``, ``number``, ``percent``, ``months``, ``date``. Each
accepts an unavailable figure and writes "not available" with a plain reason instead of failing, so a
missing figure is said next to where it would stand."""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Any

from flows.templating.limits import short_repr
from sources.registry import Unavailable, is_available

# What report templates call (the helper reference in the docs lists these).
__all__ = ["money", "money_cents", "number", "percent", "percent_number", "duration_ms", "months", "date", "month"]


def _decimal(value: Any, digits: int = 0) -> Decimal:
    """A number to format. Decimal("1e999999999") is legal, and writing it out in full would take
    minutes and a gigabyte: amounts and digit counts beyond any report's needs are refused."""
    amount = Decimal(str(value))
    if amount.is_finite() and amount.adjusted() > 60:
        raise ValueError(f"{short_repr(value)} is too large to format")
    if not 0 <= digits <= 20:
        raise ValueError(f"digits must be between 0 and 20, got {digits!r}")
    return amount


# What an executive reads instead of a technical reason. The technical reason (metric id, config key,
# file:line) goes to the run summary's warnings, the log and the operations alert (see
# flows.orchestrator.run.unavailable_warnings); the email says only what is missing, in plain words.
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


def unavailable_text(value: Unavailable) -> str:
    reason = plain_reason(value)
    return f"not available ({reason})" if reason else "not available"


def money(value: Any, cents: bool = False, currency: str = "$") -> str:
    """``money(1234.5)`` -> "$1,235"; ``money(x, cents=True)`` -> "$1,234.50". Negative amounts keep their sign."""
    if not is_available(value):
        return unavailable_text(value)
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
    """``number(1234.567, 1)`` -> "1,234.6"; infinity is "∞"."""
    if not is_available(value):
        return unavailable_text(value)
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return _no_negative_zero(f"{_decimal(value, digits):,.{digits}f}")


def percent(value: Any, digits: int = 0) -> str:
    """``value`` is a fraction: 0.125 -> 12.5% with digits=1."""
    if not is_available(value):
        return unavailable_text(value)
    if value is None:
        return "—"
    return _no_negative_zero(f"{_decimal(value, digits) * 100:,.{digits}f}%")


def months(value: Any, digits: int = 1) -> str:
    """``months(7.46)`` -> "7.5 months"; infinite runway reads "no burn (cash is not decreasing)"."""
    if not is_available(value):
        return unavailable_text(value)
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "no burn (cash is not decreasing)"
    return _no_negative_zero(f"{_decimal(value, digits):,.{digits}f}") + " months"


def date(value: Any, format: str = "%b %-d, %Y") -> str:  # noqa: A002 - the name report writers expect
    """A date (or ISO date text) as "Nov 22, 2026", or in any ``strftime`` ``format``."""
    if not is_available(value):
        return unavailable_text(value)
    if value is None:
        return "—"
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return value.strftime(format)


def money_cents(value: Any) -> str:
    """``money`` with cents: "$1,234.50" (also the ``money_cents`` column format of ``table``)."""
    return money(value, cents=True)


def percent_number(value: Any, digits: int = 1) -> str:
    """A figure already in percent: ``percent_number(25.34)`` -> "25.3%" (``percent`` takes a fraction)."""
    if not is_available(value):
        return unavailable_text(value)
    if value is None:
        return "—"
    return number(value, digits) + "%"


def percent_change(value: Any) -> str:
    """A change in percent against an average, "new" where there was none to compare with (the ``percent_change``
    column format): 12.4 -> "12%", -5 -> "-5%", None -> "new"."""
    if not is_available(value):
        return unavailable_text(value)
    return "new" if value is None else number(value) + "%"


def duration_ms(value: Any) -> str:
    """Milliseconds as a reader says them: 850 -> "850 ms", 1234 -> "1.2 s"; nothing -> "no calls"."""
    if not is_available(value):
        return unavailable_text(value)
    if value is None:
        return "no calls"
    return f"{number(value)} ms" if value < 1000 else f"{number(value / 1000, 1)} s"


def month(value: Any) -> str:
    """A month key as a reader names it (the ``month`` column format): "2026-10" -> "Oct 2026"."""
    if not is_available(value):
        return unavailable_text(value)
    text = str(value or "")
    if not re.fullmatch(r"\d{4}-\d{2}", text):
        return text or "—"
    return dt.date.fromisoformat(text + "-01").strftime("%b %Y")


def count_of(value: Any) -> str:
    """How many items a list holds, as a number (the ``count`` column format): an entity's Lambda functions."""
    if not is_available(value):
        return "n/a"
    return number(len(value or []))


def list_text(value: Any) -> str:
    """A list as "a, b, c" (the ``list`` column format): an entity's domains; nothing -> "—"."""
    if not is_available(value):
        return unavailable_text(value)
    return ", ".join(str(item) for item in value or []) or "—"


def plural(count: Any, singular: str, plural_form: str | None = None) -> str:
    """``plural(3, "issue")`` -> "3 issues", ``plural(1, "entry", "entries")`` -> "1 entry": never "(s)"."""
    if not is_available(count):
        return unavailable_text(count)
    if not isinstance(count, int) and hasattr(count, "__len__"):
        count = len(count)
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{number(count)} {word}"


FORMATTERS = {"month": month, "count": count_of, "list": list_text, "money": money, "money_cents": money_cents, "number": number, "percent": percent, "months": months,
              "date": date, "percent_number": percent_number, "duration_ms": duration_ms,
              "percent_change": percent_change}
