"""The period a run reports on: an ISO week (2026-W47) or a calendar month (2026-11).

A scheduled run derives its period from its scheduled time, not from "now", so a late or retried
run still reports the intended week.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from flows.core.errors import ConfigurationError

_WEEK = re.compile(r"^(?P<year>\d{4})-W(?P<week>\d{2})$")
_MONTH = re.compile(r"^(?P<year>\d{4})-(?P<month>\d{2})$")


@dataclass(frozen=True)
class Period:
    kind: str  # "week" | "month"
    start: dt.date
    end: dt.date  # inclusive
    label: str

    def __str__(self) -> str:
        return self.label

    def previous(self) -> Period:
        """The period of the same kind just before this one (last week, last month)."""
        if self.kind == "week":
            year, week, _ = (self.start - dt.timedelta(days=7)).isocalendar()
            return parse_period(f"{year}-W{week:02d}")
        last = self.start - dt.timedelta(days=1)
        return parse_period(f"{last.year}-{last.month:02d}")

    def year_before(self) -> Period:
        """The same ISO week (the last week of that year when it has no week 53) or month a year earlier."""
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            weeks_then = dt.date(year - 1, 12, 28).isocalendar()[1]
            return parse_period(f"{year - 1}-W{min(week, weeks_then):02d}")
        return parse_period(f"{self.start.year - 1}-{self.start.month:02d}")

    @property
    def title(self) -> str:
        """The period as a reader names it, for subjects and headings: "Nov 16–22, 2026",
        "Nov 30 – Dec 6, 2026", "Dec 28, 2026 – Jan 3, 2027", "November 2026"."""
        if self.kind == "month":
            return f"{self.start:%B} {self.start.year}"
        start, end = self.start, self.end
        if start.year != end.year:
            return f"{start:%b} {start.day}, {start.year} – {end:%b} {end.day}, {end.year}"
        if start.month != end.month:
            return f"{start:%b} {start.day} – {end:%b} {end.day}, {end.year}"
        return f"{start:%b} {start.day}–{end.day}, {end.year}"

    @property
    def words(self) -> str:
        """How the comparison reads: "last week", "last month"."""
        return f"last {self.kind}"


def parse_period(text: str) -> Period:
    text = text.strip()
    if match := _WEEK.match(text):
        year, week = int(match["year"]), int(match["week"])
        try:
            start = dt.date.fromisocalendar(year, week, 1)
        except ValueError:
            raise ConfigurationError(f"period {text!r}: {year} has no ISO week {week}") from None
        return Period("week", start, start + dt.timedelta(days=6), f"{year}-W{week:02d}")
    if match := _MONTH.match(text):
        year, month = int(match["year"]), int(match["month"])
        if not 1 <= month <= 12:
            raise ConfigurationError(f"period {text!r}: month must be 01..12")
        start = dt.date(year, month, 1)
        end = dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)
        return Period("month", start, end, f"{year}-{month:02d}")
    raise ConfigurationError(f"period {text!r}: expected an ISO week like 2026-W47 or a month like 2026-11")


def previous_period(kind: str, reference: dt.date) -> Period:
    """The last complete week (Mon-Sun) or month before ``reference``."""
    if kind == "week":
        this_monday = reference - dt.timedelta(days=reference.weekday())
        year, week, _ = (this_monday - dt.timedelta(days=7)).isocalendar()
        return parse_period(f"{year}-W{week:02d}")
    if kind == "month":
        last_month_end = reference.replace(day=1) - dt.timedelta(days=1)
        return parse_period(f"{last_month_end.year}-{last_month_end.month:02d}")
    raise ConfigurationError(f"period kind must be 'week' or 'month', got {kind!r}")


def today_in(timezone: str) -> dt.date:
    """Today's date where the portfolio is: the default period is the last complete one *there*, so
    `check`, `preview` and `run` agree whatever the machine's own timezone."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(timezone)).date()


def resolve_period(period: str | None, kind: str = "week", reference: dt.date | None = None) -> Period:
    if period:
        return parse_period(period)
    return previous_period(kind, reference or dt.date.today())
