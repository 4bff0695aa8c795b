"""The books as entries: reading a ledger export (CSV or XLSX) into ``Entry`` rows, and the calendar
helpers every ledger figure shares (month keys, the full months before a period end, monthly totals).
Sign convention: money in is positive, money out is negative."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sources.tabular import BadRowPolicy, RowProblem, parse_amount, parse_date, read_rows

BURN_WINDOW_MONTHS = 3
UNCATEGORISED = "Uncategorised"
CENT = Decimal("0.01")
# Not a metric: the unrounded gross margin handed from margins() to the rules, then dropped.
GROSS_MARGIN_EXACT = "_gross_margin_percent_exact"


@dataclass(frozen=True)
class Entry:
    date: dt.date
    account: str
    category: str
    amount: Decimal
    memo: str
    where: str  # file:line, so a finding can be traced to the cell
    # On an equity account (owner draws or contributions): moves cash, is neither revenue nor expense.
    is_draw: bool = False

    @property
    def is_expense(self) -> bool:
        return self.amount < 0 and not self.is_draw

    @property
    def is_revenue(self) -> bool:
        return self.amount > 0 and not self.is_draw



def read_ledger(path, sheet, chart, policy: BadRowPolicy,
                unreadable: list[dict[str, Any]] | None = None) -> tuple[list[Entry], list[dict[str, Any]]]:
    """The ledger's entries and the accounts it uses that the chart lacks. A row left out under
    ``on_bad_row: skip`` is added to ``unreadable`` as the bookkeeper finds it: where, date, account, amount,
    memo, why, and whether its account is on the chart (a row left out only for its account is counted
    once, as an unknown account)."""
    entries: list[Entry] = []
    unknown: dict[str, dict[str, Any]] = {}
    for line, row in read_rows(path, ["date", "account", "category", "amount", "memo"], sheet=sheet, policy=policy):
        problems = []
        try:
            date = parse_date(row["date"])
        except ValueError as exc:
            problems.append(RowProblem(str(path), line, "date", row["date"], str(exc)))
        try:
            amount = parse_amount(row["amount"])
        except ValueError as exc:
            problems.append(RowProblem(str(path), line, "amount", row["amount"], str(exc)))
        if chart is not None and row["account"] not in chart:
            problems.append(RowProblem(str(path), line, "account", row["account"],
                                       "not in the chart of accounts"))
            seen = unknown.setdefault(row["account"], {"account": row["account"], "entries": 0,
                                                       "first_seen": f"{path.name}:{line}"})
            seen["entries"] += 1
        if policy.reject(problems):
            if unreadable is not None:
                unreadable.append({"where": f"{path.name}:{line}", "date": row["date"], "account": row["account"],
                                   "amount": row["amount"], "memo": row["memo"],
                                   "why": "; ".join(f"{p.column} {p.message}" for p in problems),
                                   "account_known": chart is None or row["account"] in chart})
            continue
        account = chart.get(row["account"]) if chart is not None else None
        entries.append(Entry(date, row["account"], row["category"] or UNCATEGORISED, amount, row["memo"],
                             f"{path.name}:{line}", is_draw=account is not None and account.type == "equity"))
    return entries, sorted(unknown.values(), key=lambda item: item["account"])


def month_key(day: dt.date) -> str:
    return day.isoformat()[:7]  # "2026-03": called for every ledger row, and isoformat is the fastest way


def shift_month(key: str, delta: int) -> str:
    year, month = int(key[:4]), int(key[5:7])
    index = year * 12 + month - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def full_months_before(period_end: dt.date, count: int) -> list[str]:
    """The ``count`` calendar months that ended on or before ``period_end``, oldest first."""
    next_day = period_end + dt.timedelta(days=1)
    last = month_key(period_end) if next_day.month != period_end.month else shift_month(month_key(period_end), -1)
    return [shift_month(last, -offset) for offset in range(count - 1, -1, -1)]


def monthly_totals(entries: list[Entry], period_end: dt.date) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    expenses: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        if entry.date > period_end:
            continue
        key = month_key(entry.date)
        if entry.is_expense:
            expenses[key] += -entry.amount
        elif entry.is_revenue:
            revenue[key] += entry.amount
    return revenue, expenses


def monthly_draws(entries: list[Entry], period_end: dt.date) -> dict[str, Decimal]:
    """Cash the owner took out per month (a contribution back in counts against it)."""
    draws: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        if entry.is_draw and entry.date <= period_end:
            draws[month_key(entry.date)] += -entry.amount
    return draws

