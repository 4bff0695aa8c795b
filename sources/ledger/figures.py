"""Ledger figures computed from the entries: cash, burn and runway, the expense audit, chart account
totals, the operating (bank) account of single-entry books, margins, and whether the books are fresh
enough to report on. Pure functions over ``books.Entry`` rows."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sources.errors import SourceError
from sources.ledger.books import (
    BURN_WINDOW_MONTHS,
    CENT,
    GROSS_MARGIN_EXACT,
    UNCATEGORISED,
    Entry,
    full_months_before,
    month_key,
    monthly_draws,
    monthly_totals,
    shift_month,
)
from sources.registry import SourceContext, Unavailable

# figures would be wrong, not just late: a ledger cut off mid-month overstates cash and runway.
DEFAULT_MAX_DATA_AGE_DAYS = 14



def freshness(entries: list[Entry], settings: Mapping[str, Any], context: SourceContext) -> Unavailable | None:
    """None when the ledger reaches close enough to the period end; else why its figures would be wrong."""
    limit = setting_int(settings, "max_data_age_days", DEFAULT_MAX_DATA_AGE_DAYS,
                         f"tenant '{context.tenant_id}': sources.ledger")
    if not entries:
        return Unavailable("finance.data_through", "the ledger has no entries", plain="no bookkeeping data")
    last = max(entry.date for entry in entries)
    behind = (context.period_end - last).days
    if behind <= limit:
        return None
    return Unavailable("finance.data_through",
                       f"data only through {last.isoformat()}: the ledger's last entry is {behind} days before the "
                       f"period end {context.period_end.isoformat()} (more than sources.ledger.max_data_age_days: "
                       f"{limit}); cash, burn and runway would be wrong, so they are not shown",
                       plain=f"books only through {last:%b} {last.day}, {last.year}")


def summarise(entries: list[Entry], opening: Decimal, period_end: dt.date) -> dict[str, Any]:
    revenue, expenses = monthly_totals(entries, period_end)
    draws = monthly_draws(entries, period_end)
    # Cash counts every entry, draws included: they left the bank even though they are not expenses.
    cash = opening + sum((e.amount for e in entries if e.date <= period_end), Decimal(0))
    months = sorted(set(revenue) | set(expenses) | set(draws))
    monthly = [
        {"month": m, "revenue": revenue[m], "expenses": expenses[m], "net": revenue[m] - expenses[m],
         "draws": draws[m]} for m in months
    ]
    window = full_months_before(period_end, BURN_WINDOW_MONTHS)
    covered = [m for m in window if m in revenue or m in expenses or m in draws]
    result: dict[str, Any] = {"finance.monthly": monthly, "finance.cash_on_hand": cash}
    if len(covered) < len(window):
        reason = f"the ledger has no entries for {', '.join(sorted(set(window) - set(covered)))}"
        for name in ("finance.burn_rate", "finance.runway_months", "finance.revenue_last_month",
                     "finance.expenses_last_month", "finance.expenses_by_category",
                     "finance.owner_draws_last_month"):
            result[name] = Unavailable(name, reason)
        return result
    burn = sum((expenses[m] - revenue[m] for m in window), Decimal(0)) / len(window)
    # Runway is how long the cash lasts, and owner draws take cash out just as costs do: leaving them
    # out of burn (they are not expenses) must not leave them out of how fast cash falls.
    outflow = burn + sum((draws[m] for m in window), Decimal(0)) / len(window)
    last = window[-1]
    by_category: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        if entry.is_expense and month_key(entry.date) == last:
            by_category[entry.category] += -entry.amount
    result.update({
        "finance.burn_rate": burn.quantize(CENT),
        # Overdrawn means no runway left, not a negative one.
        "finance.runway_months": (float(cash / outflow) if cash > 0 else 0.0) if outflow > 0 else float("inf"),
        "finance.revenue_last_month": revenue[last],
        "finance.expenses_last_month": expenses[last],
        "finance.owner_draws_last_month": draws[last],
        "finance.expenses_by_category": [
            {"category": category, "amount": amount}
            for category, amount in sorted(by_category.items(), key=lambda item: (-item[1], item[0]))
        ],
    })
    return result


def cash_movements(entries: list[Entry], start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    """The entries dated in the period netted by category (draws included: they moved cash), largest
    movement first; they add up to cash on hand at ``end`` minus cash on hand the day before ``start``."""
    by_category: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        if start <= entry.date <= end:
            by_category[entry.category or UNCATEGORISED] += entry.amount
    return [{"category": category, "amount": amount}
            for category, amount in sorted(by_category.items(), key=lambda item: (-abs(item[1]), item[0])) if amount]


def setting_int(settings: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = settings.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SourceError(f"{where}.{key} must be a whole number of at least 1, got {value!r}")
    return value


def expense_audit(entries: list[Entry], period_end: dt.date, settings: Mapping[str, Any]) -> dict[str, Any]:
    """This month against the average of the months before it, the largest items, uncategorised entries."""
    average_months = setting_int(settings, "average_months", 6, "sources.ledger.audit")
    largest_count = setting_int(settings, "largest", 5, "sources.ledger.audit")
    threshold = Decimal(str(settings.get("flag_change_percent", 25)))
    last = full_months_before(period_end, 1)[0]
    covered_months = {month_key(e.date) for e in entries if e.date <= period_end}
    before = [m for m in (shift_month(last, -offset) for offset in range(average_months, 0, -1))
              if m in covered_months]

    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for entry in entries:
        if entry.is_expense and entry.date <= period_end:
            totals[entry.category][month_key(entry.date)] += -entry.amount
    audit = []
    for category, by_month in totals.items():
        this_month = by_month.get(last, Decimal(0))
        average = (sum((by_month.get(m, Decimal(0)) for m in before), Decimal(0)) / len(before)
                   if before else Decimal(0))
        if this_month == 0 and average == 0:
            continue
        change = this_month - average
        change_percent = float(change / average * 100) if average else None
        flagged = change_percent is None or abs(Decimal(str(change_percent))) > threshold
        audit.append({"category": category, "this_month": this_month, "average": average.quantize(CENT),
                      "change": change.quantize(CENT),
                      "change_percent": None if change_percent is None else round(change_percent, 1),
                      "flagged": flagged, "flag": "check" if flagged else ""})
    audit.sort(key=lambda row: (-row["this_month"], row["category"]))

    last_month_expenses = [e for e in entries if e.is_expense and month_key(e.date) == last and e.date <= period_end]
    largest = sorted(last_month_expenses, key=lambda e: (e.amount, e.date, e.where))[:largest_count]
    uncategorised = [e for e in entries if e.is_expense and e.category == UNCATEGORISED and e.date <= period_end]
    return {
        "finance.expense_audit": audit,
        "finance.largest_expenses": [
            {"date": e.date, "account": e.account, "category": e.category, "amount": -e.amount, "memo": e.memo,
             "where": e.where} for e in largest
        ],
        "finance.uncategorised_expenses": [
            {"date": e.date, "account": e.account, "amount": -e.amount, "memo": e.memo, "where": e.where}
            for e in uncategorised
        ],
    }


def account_totals(entries: list[Entry], chart, period_end: dt.date,
                   operating: str | None = None) -> list[dict[str, Any]]:
    """Last full month per chart account. In single-entry books every row also moves the bank, so the
    operating account's figure is the month's net of all entries, not the (empty) rows posted to it."""
    last = full_months_before(period_end, 1)[0]
    totals: dict[str, Decimal] = defaultdict(Decimal)
    movement = Decimal(0)
    for entry in entries:
        if month_key(entry.date) == last:
            totals[entry.account] += entry.amount
            if entry.account != operating:
                movement += entry.amount
    return [{"account": a.code, "name": a.name, "type": a.type,
             "amount": totals.get(a.code, Decimal(0)) + (movement if a.code == operating else 0)}
            for a in chart.values()]


def operating_account_name(chart, settings: Mapping[str, Any]) -> str | Unavailable:
    name = "finance.operating_account"
    if chart is None:
        return Unavailable(name, "sources.ledger.accounts (the chart of accounts) is not set")
    if "operating_account" in settings:
        code = str(settings["operating_account"])
        if code not in chart:
            return Unavailable(name, f"sources.ledger.operating_account {code!r} is not in the chart of accounts")
        return code
    assets = [a.code for a in chart.values() if a.type == "asset"]
    if len(assets) != 1:
        return Unavailable(name, f"the chart has {len(assets)} asset accounts; set sources.ledger.operating_account "
                                 "to the bank account")
    return assets[0]


def operating_account(entries: list[Entry], chart, code: str, opening: Decimal,
                      period_end: dt.date) -> dict[str, Any]:
    """The bank account's balance as single-entry books imply it: every entry passed through the bank."""
    upto = [e for e in entries if e.date <= period_end]
    posted = [e for e in upto if e.account == code]
    return {"account": code, "name": chart[code].name, "opening": opening,
            "posted": sum((e.amount for e in posted), Decimal(0)), "posted_entries": len(posted),
            "balance": opening + sum((e.amount for e in upto), Decimal(0)),
            "implied_entries": len(upto) - len(posted)}


def margins(entries: list[Entry], settings: Mapping[str, Any], period_end: dt.date) -> dict[str, Any]:
    """Gross and net margin per month and over the burn window; cost of revenue is a set of categories."""
    categories = settings.get("cost_of_revenue_categories")
    if categories is None:
        categories = (settings.get("unit_economics") or {}).get("variable_categories")
    cost_categories = set(categories or [])
    revenue, expenses = monthly_totals(entries, period_end)
    cost: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        if entry.is_expense and entry.category in cost_categories and entry.date <= period_end:
            cost[month_key(entry.date)] += -entry.amount

    def percent(part: Decimal, whole: Decimal) -> float | None:
        return round(float(part / whole * 100), 1) if whole > 0 else None

    rows = []
    for month in sorted(set(revenue) | set(expenses)):
        gross = revenue[month] - cost[month] if cost_categories else None
        net = revenue[month] - expenses[month]
        rows.append({"month": month, "revenue": revenue[month],
                     "cost_of_revenue": cost[month] if cost_categories else None, "gross_profit": gross,
                     "gross_margin_percent": percent(gross, revenue[month]) if gross is not None else None,
                     "expenses": expenses[month], "net": net, "net_margin_percent": percent(net, revenue[month])})
    window = full_months_before(period_end, BURN_WINDOW_MONTHS)
    result: dict[str, Any] = {"finance.margins": rows}
    span = f"{window[0]} to {window[-1]}"
    # Same coverage test as burn: a month of the window without a single entry means the books are not
    # complete, and a margin over the months that are there would pass for a 3-month figure.
    draws = monthly_draws(entries, period_end)
    missing = [m for m in window if m not in revenue and m not in expenses and m not in draws]
    if missing:
        plain = "books incomplete for " + ", ".join(
            f"{dt.date(int(m[:4]), int(m[5:7]), 1):%B %Y}" for m in missing)
        for name in ("finance.gross_margin_percent", "finance.net_margin_percent"):
            result[name] = Unavailable(name, f"the ledger has no entries for {', '.join(missing)}", plain=plain)
        return result
    window_revenue = sum((revenue[m] for m in window), Decimal(0))
    window_expenses = sum((expenses[m] for m in window), Decimal(0))
    window_cost = sum((cost[m] for m in window), Decimal(0))
    if window_revenue <= 0:
        for name in ("finance.gross_margin_percent", "finance.net_margin_percent"):
            result[name] = Unavailable(name, f"no revenue from {span}", plain="no revenue in the last 3 months")
        return result
    result["finance.net_margin_percent"] = percent(window_revenue - window_expenses, window_revenue)
    if cost_categories:
        # The rounded figure is for reading; the gross-margin rule compares this one (29.96% is under 30%).
        result[GROSS_MARGIN_EXACT] = (window_revenue - window_cost) / window_revenue * 100
    result["finance.gross_margin_percent"] = (
        percent(window_revenue - window_cost, window_revenue) if cost_categories else
        Unavailable("finance.gross_margin_percent", "sources.ledger.cost_of_revenue_categories is not set (nor "
                    "unit_economics.variable_categories)", plain="cost of sales not set up"))
    return result
