"""Ledger source: the books as a CSV export or an XLSX workbook (date, account, category, amount, memo).

Sign convention: money in is positive, money out is negative, as bank and bookkeeping exports do.
Settings (per tenant, under ``sources.ledger``):
    path             the ledger file (.csv, or .xlsx read with openpyxl)
    sheet            the workbook sheet to read (default: the first)
    opening_balance  cash on hand before the ledger's first entry (default 0)
    on_bad_row       "fail" (default: the source fails, naming the cell) or "skip" (the row is left
                     out and listed in finance.ledger_problems); applies to the chart and targets too
    accounts         chart of accounts CSV (account, name, type); entries on other accounts are bad rows
    targets          monthly revenue targets CSV (month, target)
    audit            {average_months: 6, flag_change_percent: 25, largest: 5}
    unit_economics   {unit, revenue_account, variable_categories, excluded_categories, window_months}
    rules            financial rules, see sources/finance_rules.py
    cost_of_revenue_categories  expense categories that are the cost of what is sold, for gross margin
                     (default: unit_economics.variable_categories; neither set: gross margin unavailable)
    operating_account  the chart's bank account (default: the chart's only asset account)

Owner draws: an entry on an account the chart types "equity" (e.g. 3100 Owner Draws) is money the
owner takes out, not a cost of the business: it lowers cash but is not an expense, so it is left out
of expenses, burn, margins and unit costs and reported as draws (finance.monthly "draws",
finance.owner_draws_last_month). Runway does count them: it divides cash by burn plus the average draws
of the burn window, since draws lower cash like costs do. Without a chart every negative entry is an expense, as before.

Single-entry books: each row names only the income or expense account; the bank side is implied.
The operating (bank) account therefore has no rows of its own and its chart total reads 0. Its
balance is derived instead: opening balance plus every entry (finance.operating_account), which is
cash on hand; finance.account_totals shows the bank account's net movement of the month the same way.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flows.errors import SourceError
from sources.accounts import read_chart
from sources.registry import REGISTRY, MetricSpec, SourceContext, Unavailable
from sources.tabular import BadRowPolicy, MissingFile, RowProblem, parse_amount, parse_date, read_rows

BURN_WINDOW_MONTHS = 3
UNCATEGORISED = "Uncategorised"
CENT = Decimal("0.01")
# Not a metric: the unrounded gross margin handed from margins() to the rules, then dropped.
GROSS_MARGIN_EXACT = "_gross_margin_percent_exact"

METRICS = [
    MetricSpec("finance.monthly", "Revenue, expenses and net per calendar month up to the period end, and the "
               "owner draws of the month, which are not expenses (rows: month, revenue, expenses, net, draws).",
               "table"),
    MetricSpec("finance.revenue_last_month", "Revenue in the last full month before the period end.", "money"),
    MetricSpec("finance.expenses_last_month", "Expenses in the last full month before the period end.", "money"),
    MetricSpec("finance.burn_rate", f"Average monthly net burn (expenses minus revenue) over the last "
               f"{BURN_WINDOW_MONTHS} full months; negative means the business made money.", "money"),
    MetricSpec("finance.cash_on_hand", "Opening balance plus every ledger entry up to the period end.", "money"),
    MetricSpec("finance.runway_months", "Cash on hand divided by what leaves the bank each month: the burn rate "
               f"plus the average owner draws of the same {BURN_WINDOW_MONTHS} full months (draws are not expenses, "
               "but they lower cash); infinite when cash is not falling, 0 when overdrawn.", "months"),
    MetricSpec("finance.expenses_by_category", "Expenses of the last full month by category, largest first "
               "(rows: category, amount).", "table"),
    MetricSpec("finance.ledger_problems", "Ledger, chart and target rows left out under on_bad_row: skip, each "
               "with file, line, column and value.", "list"),
    MetricSpec("finance.expense_audit", "Each expense category's last full month against its average over the "
               "months before (rows: category, this_month, average, change, change_percent, flagged).", "table"),
    MetricSpec("finance.largest_expenses", "The largest single expenses of the last full month "
               "(rows: date, account, category, amount, memo, where).", "table"),
    MetricSpec("finance.uncategorised_expenses", "Expenses up to the period end with no category "
               "(rows: date, account, amount, memo, where).", "table"),
    MetricSpec("finance.unknown_accounts", "Accounts used in the ledger that the chart of accounts does not "
               "list (rows: account, entries, first_seen).", "table"),
    MetricSpec("finance.account_totals", "Last full month's total per chart account "
               "(rows: account, name, type, amount).", "table"),
    MetricSpec("finance.revenue_targets", "Revenue against the monthly target from January of the period's year "
               "through March of the next (rows: month, target, actual, difference, status).", "table"),
    MetricSpec("finance.revenue_target_attainment", "Revenue of the last full month as a percentage of its "
               "target.", "percent"),
    MetricSpec("finance.unit_economics", "Units sold, price, variable cost and contribution margin per unit, "
               "and fixed monthly costs, over the last full months.", "mapping"),
    MetricSpec("finance.break_even_units", "Units per month needed to cover fixed monthly costs "
               "(fixed costs / contribution margin per unit).", "number"),
    MetricSpec("finance.rules", "Each financial rule from the config, evaluated "
               "(rows: rule, status, actual, limit, detail).", "table"),
    MetricSpec("finance.rules_failed", "Number of financial rules that failed.", "number"),
    MetricSpec("finance.owner_draws_last_month", "Owner draws (entries on the chart's equity accounts) in the last "
               "full month: cash the owner took out, left out of expenses and burn.", "money"),
    MetricSpec("finance.margins", "Gross and net margin per calendar month up to the period end (rows: month, "
               "revenue, cost_of_revenue, gross_profit, gross_margin_percent, expenses, net, net_margin_percent). "
               "Cost of revenue = expenses in cost_of_revenue_categories (default: the unit_economics "
               "variable_categories); net = revenue - all expenses (owner draws are not expenses). Percentages "
               "are of revenue, empty for a month without revenue.", "table"),
    MetricSpec("finance.gross_margin_percent", f"Gross margin over the last {BURN_WINDOW_MONTHS} full months: "
               "(revenue - cost of revenue) / revenue.", "percent"),
    MetricSpec("finance.net_margin_percent", f"Net margin over the last {BURN_WINDOW_MONTHS} full months: "
               "(revenue - expenses) / revenue.", "percent"),
    MetricSpec("finance.operating_account", "The bank (operating) account of single-entry books: its balance "
               "derived as opening balance plus every entry to the period end, against what is posted to it "
               "directly (keys: account, name, opening, posted, posted_entries, balance, implied_entries).",
               "mapping"),
    MetricSpec("finance.profitability_roadmap", "Four dated milestones from the period end through March of "
               "the next year (rows: milestone, date, month, revenue_target, burn_ceiling, expense_ceiling, "
               "revenue_so_far for the month under way, status in progress/upcoming/no target). Each is the month's revenue target and a net-burn ceiling "
               "that steps from today's burn rate down to break-even at the last milestone; expense ceiling = "
               "target + burn ceiling.", "table"),
    MetricSpec("finance.break_even_month", "The first month from now through March of the next year whose "
               "revenue target covers the average monthly expenses of the last "
               f"{BURN_WINDOW_MONTHS} full months; empty when none does.", "text"),
    MetricSpec("finance.data_through", "Date of the ledger's last entry: how far the books reach. When it is "
               "more than max_data_age_days (default 14) before the period end, every other ledger figure is "
               "unavailable with that date as the reason, since cash, burn and runway would be wrong.", "date"),
]

# Books may lag a little (receipts entered weekly); beyond this many days before the period end the
# figures would be wrong, not just late: a ledger cut off mid-month overstates cash and runway.
DEFAULT_MAX_DATA_AGE_DAYS = 14


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


@REGISTRY.register("ledger", "Bookkeeping ledger exported as CSV or kept in an XLSX workbook.", METRICS)
def gather_ledger(settings: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    if "path" not in settings:
        raise SourceError(f"tenant '{context.tenant_id}': sources.ledger.path is not set")
    path = context.resolve(settings["path"])
    policy = BadRowPolicy(settings, "ledger", context.tenant_id, context.base_dir)
    try:
        opening = parse_amount(str(settings.get("opening_balance", "0")))
    except ValueError:
        raise SourceError(f"tenant '{context.tenant_id}': sources.ledger.opening_balance is not a number: "
                          f"{settings.get('opening_balance')!r}") from None

    result: dict[str, Any] = {}
    chart = None
    if "accounts" in settings:
        try:
            chart = read_chart(context.resolve(settings["accounts"]), policy)
        except MissingFile as exc:
            if policy.policy == "fail":
                raise
            for name in ("finance.unknown_accounts", "finance.account_totals"):
                result[name] = Unavailable(name, f"chart of accounts: {exc}")
    else:
        for name in ("finance.unknown_accounts", "finance.account_totals"):
            result[name] = Unavailable(name, "sources.ledger.accounts (the chart of accounts) is not set")

    entries, unknown = read_ledger(path, settings.get("sheet"), chart, policy)
    stale = freshness(entries, settings, context)
    if stale is not None:
        # Every figure needs the books up to the period end: all are unavailable, with the date as
        # the reason; only how far the data reaches and the row problems stay.
        return {**{spec.name: Unavailable(spec.name, stale.reason, stale.plain) for spec in METRICS},
                "finance.data_through": max(e.date for e in entries) if entries else stale,
                "finance.ledger_problems": policy.findings}
    result["finance.data_through"] = max(e.date for e in entries)
    result.update(summarise(entries, opening, context.period_end))
    operating = operating_account_name(chart, settings) if chart is not None else None
    if chart is not None:
        result["finance.unknown_accounts"] = unknown
        result["finance.account_totals"] = account_totals(
            entries, chart, context.period_end, operating if isinstance(operating, str) else None)
    if isinstance(operating, str):
        result["finance.operating_account"] = operating_account(entries, chart, operating, opening,
                                                                context.period_end)
    else:
        result["finance.operating_account"] = operating if operating is not None else Unavailable(
            "finance.operating_account", "sources.ledger.accounts (the chart of accounts) is not set")
    result.update(expense_audit(entries, context.period_end, settings.get("audit") or {}))
    result.update(margins(entries, settings, context.period_end))

    # Imported here so the ledger module reads top-down; these are pure functions over entries.
    from sources.finance_rules import evaluate_rules, unit_economics
    from sources.roadmap import profitability_roadmap
    from sources.targets import ALL_TARGETS, revenue_targets

    result.update(revenue_targets(entries, settings, context, policy))
    all_targets = result.pop(ALL_TARGETS, None)
    result.update(unit_economics(entries, settings.get("unit_economics"), context.period_end))
    result.update(profitability_roadmap(entries, result, context, all_targets))
    result.update(evaluate_rules(settings.get("rules"), entries, result, context))
    result.pop(GROSS_MARGIN_EXACT, None)
    result["finance.ledger_problems"] = policy.findings
    return result


def freshness(entries: list[Entry], settings: Mapping[str, Any], context: SourceContext) -> Unavailable | None:
    """None when the ledger reaches close enough to the period end; else why its figures would be wrong."""
    limit = _setting_int(settings, "max_data_age_days", DEFAULT_MAX_DATA_AGE_DAYS,
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


def read_ledger(path, sheet, chart, policy: BadRowPolicy) -> tuple[list[Entry], list[dict[str, Any]]]:
    entries: list[Entry] = []
    unknown: dict[str, dict[str, Any]] = {}
    for line, row in read_rows(path, ["date", "account", "category", "amount", "memo"], sheet=sheet):
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


def _setting_int(settings: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = settings.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SourceError(f"{where}.{key} must be a whole number of at least 1, got {value!r}")
    return value


def expense_audit(entries: list[Entry], period_end: dt.date, settings: Mapping[str, Any]) -> dict[str, Any]:
    """This month against the average of the months before it, the largest items, uncategorised entries."""
    average_months = _setting_int(settings, "average_months", 6, "sources.ledger.audit")
    largest_count = _setting_int(settings, "largest", 5, "sources.ledger.audit")
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
                      "flagged": flagged})
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
