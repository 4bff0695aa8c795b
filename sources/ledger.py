"""Ledger source: the books as a CSV export (date, account, category, amount, memo).

Sign convention: money in is positive, money out is negative, as bank and bookkeeping exports do.
Settings (per tenant, under ``sources.ledger``):
    path             the CSV file
    opening_balance  cash on hand before the ledger's first entry (default 0)
    on_bad_row       "fail" (default: the source fails, naming the cell) or "skip" (the row is left
                     out and listed in finance.ledger_problems)
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flows.errors import SourceError
from sources.registry import REGISTRY, MetricSpec, SourceContext, Unavailable
from sources.tabular import RowProblem, parse_amount, parse_date, read_csv_rows

BURN_WINDOW_MONTHS = 3

METRICS = [
    MetricSpec("finance.monthly", "Revenue, expenses and net per calendar month up to the period end "
               "(rows: month, revenue, expenses, net).", "table"),
    MetricSpec("finance.revenue_last_month", "Revenue in the last full month before the period end.", "money"),
    MetricSpec("finance.expenses_last_month", "Expenses in the last full month before the period end.", "money"),
    MetricSpec("finance.burn_rate", f"Average monthly net burn (expenses minus revenue) over the last "
               f"{BURN_WINDOW_MONTHS} full months; negative means the business made money.", "money"),
    MetricSpec("finance.cash_on_hand", "Opening balance plus every ledger entry up to the period end.", "money"),
    MetricSpec("finance.runway_months", "Cash on hand divided by burn rate; infinite when not burning.", "months"),
    MetricSpec("finance.expenses_by_category", "Expenses of the last full month by category, largest first "
               "(rows: category, amount).", "table"),
    MetricSpec("finance.ledger_problems", "Ledger rows left out under on_bad_row: skip, each with file, line, "
               "column and value.", "list"),
]


@REGISTRY.register("ledger", "Bookkeeping ledger exported as CSV.", METRICS)
def gather_ledger(settings: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    if "path" not in settings:
        raise SourceError(f"tenant '{context.tenant_id}': sources.ledger.path is not set")
    path = context.resolve(settings["path"])
    policy = settings.get("on_bad_row", "fail")
    if policy not in ("fail", "skip"):
        raise SourceError(f"tenant '{context.tenant_id}': sources.ledger.on_bad_row must be 'fail' or 'skip', "
                          f"got {policy!r}")
    try:
        opening = parse_amount(str(settings.get("opening_balance", "0")))
    except ValueError:
        raise SourceError(f"tenant '{context.tenant_id}': sources.ledger.opening_balance is not a number: "
                          f"{settings.get('opening_balance')!r}") from None

    entries: list[tuple[dt.date, str, Decimal]] = []
    problems: list[RowProblem] = []
    for line, row in read_csv_rows(path, ["date", "account", "category", "amount", "memo"]):
        row_problems = []
        try:
            date = parse_date(row["date"])
        except ValueError as exc:
            row_problems.append(RowProblem(str(path), line, "date", row["date"], str(exc)))
        try:
            amount = parse_amount(row["amount"])
        except ValueError as exc:
            row_problems.append(RowProblem(str(path), line, "amount", row["amount"], str(exc)))
        if row_problems:
            if policy == "fail":
                raise SourceError("; ".join(str(p) for p in row_problems))
            problems.extend(row_problems)
            continue
        entries.append((date, row["category"] or "Uncategorised", amount))

    return summarise(entries, opening, context.period_end) | {
        "finance.ledger_problems": [str(p) for p in problems],
    }


def month_key(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def full_months_before(period_end: dt.date, count: int) -> list[str]:
    """The ``count`` calendar months that ended on or before ``period_end``, oldest first."""
    year, month = period_end.year, period_end.month
    last_day_of_month = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1))
    if period_end < last_day_of_month:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return list(reversed(months))


def summarise(entries: list[tuple[dt.date, str, Decimal]], opening: Decimal, period_end: dt.date) -> dict[str, Any]:
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    expenses: dict[str, Decimal] = defaultdict(Decimal)
    by_category: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    cash = opening
    for date, category, amount in entries:
        if date > period_end:
            continue
        key = month_key(date)
        cash += amount
        if amount >= 0:
            revenue[key] += amount
        else:
            expenses[key] += -amount
            by_category[key][category] += -amount

    months = sorted(set(revenue) | set(expenses))
    monthly = [
        {"month": m, "revenue": revenue[m], "expenses": expenses[m], "net": revenue[m] - expenses[m]} for m in months
    ]
    window = full_months_before(period_end, BURN_WINDOW_MONTHS)
    covered = [m for m in window if m in revenue or m in expenses]
    result: dict[str, Any] = {"finance.monthly": monthly, "finance.cash_on_hand": cash}
    if len(covered) < len(window):
        reason = f"the ledger has no entries for {', '.join(sorted(set(window) - set(covered)))}"
        for name in ("finance.burn_rate", "finance.runway_months", "finance.revenue_last_month",
                     "finance.expenses_last_month", "finance.expenses_by_category"):
            result[name] = Unavailable(name, reason)
        return result
    burn = sum((expenses[m] - revenue[m] for m in window), Decimal(0)) / len(window)
    last = window[-1]
    result.update({
        "finance.burn_rate": burn.quantize(Decimal("0.01")),
        "finance.runway_months": float(cash / burn) if burn > 0 else float("inf"),
        "finance.revenue_last_month": revenue[last],
        "finance.expenses_last_month": expenses[last],
        "finance.expenses_by_category": [
            {"category": category, "amount": amount}
            for category, amount in sorted(by_category[last].items(), key=lambda item: (-item[1], item[0]))
        ],
    })
    return result
