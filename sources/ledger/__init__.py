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
    rules            financial rules, see sources/ledger/rules.py
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

import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sources.accounts import read_chart
from sources.errors import SourceError
from sources.ledger import briefing
from sources.ledger.books import BURN_WINDOW_MONTHS, GROSS_MARGIN_EXACT, Entry, read_ledger
from sources.ledger.briefing import briefing_figures
from sources.ledger.figures import (
    account_totals,
    cash_movements,
    expense_audit,
    freshness,
    margins,
    operating_account,
    operating_account_name,
    summarise,
)
from sources.ledger.roadmap import profitability_roadmap
from sources.ledger.rules import evaluate_rules, unit_economics
from sources.ledger.targets import ALL_TARGETS, revenue_targets
from sources.registry import REGISTRY, Components, MetricSpec, SourceContext, Unavailable
from sources.tabular import BadRowPolicy, MissingFile, parse_amount

METRICS = [
    MetricSpec("finance.monthly", "Revenue, expenses and net per calendar month up to the period end, and the "
               "owner draws of the month, which are not expenses (rows: month, revenue, expenses, net, draws).",
               "table"),
    MetricSpec("finance.revenue_last_month", "Revenue in the last full month before the period end.", "money", better='up', total=True, target='finance.revenue_target_last_month'),
    MetricSpec("finance.expenses_last_month", "Expenses in the last full month before the period end.", "money",
               better='down', total=True, components=Components("finance.expenses_by_category", "category")),
    MetricSpec("finance.burn_rate", f"Average monthly net burn (expenses minus revenue) over the last "
               f"{BURN_WINDOW_MONTHS} full months; negative means the business made money.", "money", better='down', total=True),
    MetricSpec("finance.cash_on_hand", "Opening balance plus every ledger entry up to the period end.", "money",
               better='up', total=True,
               components=Components("finance.cash_movements", "category", adds_up_to="change")),
    MetricSpec("finance.cash_movements", "The period's ledger entries netted by category, largest movement first "
               "(rows: category, amount; money in is positive): together they are the change in cash on hand "
               "since the prior period.", "table"),
    MetricSpec("finance.runway_months", "Cash on hand divided by what leaves the bank each month: the burn rate "
               f"plus the average owner draws of the same {BURN_WINDOW_MONTHS} full months (draws are not expenses, "
               "but they lower cash); infinite when cash is not falling, 0 when overdrawn.", "months", better="up",
               portfolio_ratio=("finance.cash_on_hand", "finance.monthly_outflow", 1)),
    MetricSpec("finance.expenses_by_category", "Expenses of the last full month by category, largest first "
               "(rows: category, amount).", "table"),
    MetricSpec("finance.ledger_problems", "Ledger, chart and target rows left out under on_bad_row: skip, each "
               "with file, line, column and value.", "list"),
    MetricSpec("finance.unreadable_rows", "The ledger rows left out under on_bad_row: skip, as the bookkeeper "
               "finds them (rows: where = file:line, date, account, amount, memo, as written; why; account_known: "
               "false when the account is not on the chart).", "table"),
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
    MetricSpec("finance.revenue_target_last_month", "The revenue target of the last full month before the period "
               "end (from the targets file): the target finance.revenue_last_month is compared with.", "money",
               total=True),
    MetricSpec("finance.revenue_target_attainment", "Revenue of the last full month as a percentage of its "
               "target.", "percent", better='up'),
    MetricSpec("finance.unit_economics", "Units sold, price, variable cost and contribution margin per unit, "
               "and fixed monthly costs, over the last full months.", "mapping"),
    MetricSpec("finance.break_even_units", "Units per month needed to cover fixed monthly costs "
               "(fixed costs / contribution margin per unit).", "number"),
    MetricSpec("finance.rules", "Each financial rule from the config, evaluated "
               "(rows: rule, status, actual, limit, detail).", "table"),
    MetricSpec("finance.rules_failed", "Number of financial rules that failed.", "number", better='down', total=True),
    MetricSpec("finance.owner_draws_last_month", "Owner draws (entries on the chart's equity accounts) in the last "
               "full month: cash the owner took out, left out of expenses and burn.", "money", better='down', total=True),
    MetricSpec("finance.margins", "Gross and net margin per calendar month up to the period end (rows: month, "
               "revenue, cost_of_revenue, gross_profit, gross_margin_percent, expenses, net, net_margin_percent). "
               "Cost of revenue = expenses in cost_of_revenue_categories (default: the unit_economics "
               "variable_categories); net = revenue - all expenses (owner draws are not expenses). Percentages "
               "are of revenue, empty for a month without revenue.", "table"),
    MetricSpec("finance.gross_margin_percent", f"Gross margin over the last {BURN_WINDOW_MONTHS} full months: "
               "(revenue - cost of revenue) / revenue.", "percent", better='up'),
    MetricSpec("finance.net_margin_percent", f"Net margin over the last {BURN_WINDOW_MONTHS} full months: "
               "(revenue - expenses) / revenue.", "percent", better='up'),
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
    *briefing.METRICS,
]

# The ledger read last, per file: a report that compares with earlier periods gathers the ledger again for
# the prior period and a year before (RunPlan.lookbacks), right after the current one, and those gathers
# read the same file. Keyed by the file's and the chart's identity (path, size, modification time) and the
# settings the reading depends on; a few entries, since one tenant's gathers come one after another.
_READ_CACHE: OrderedDict[tuple, tuple[list[Entry], list[dict[str, Any]], list[Any], list[dict[str, Any]]]] = \
    OrderedDict()
_READ_CACHE_SIZE = 4
_READ_LOCK = threading.Lock()


def _file_identity(path: Any) -> tuple:
    stat = Path(path).stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def read_ledger_once(path: Path, settings: Mapping[str, Any], chart: Any, policy: BadRowPolicy,
                     unreadable: list[dict[str, Any]], context: SourceContext) -> tuple[list[Entry], list[dict[str, Any]]]:
    """``read_ledger`` once per file for the gathers of one tenant's periods: the same entries, unknown
    accounts, unreadable rows and skipped-row findings as reading it again."""
    try:
        key = (context.tenant_id, _file_identity(path), settings.get("sheet"), policy.policy,
               _file_identity(context.resolve(settings["accounts"])) if chart is not None else None)
    except (OSError, KeyError):  # a missing file: read_ledger says so with its own error
        return read_ledger(path, settings.get("sheet"), chart, policy, unreadable)
    with _READ_LOCK:
        cached = _READ_CACHE.get(key)
        if cached is not None:
            _READ_CACHE.move_to_end(key)
    if cached is None:
        rows: list[dict[str, Any]] = []
        skipped_before = len(policy.problems)  # the chart's own skipped rows come before the ledger's
        entries, unknown = read_ledger(path, settings.get("sheet"), chart, policy, rows)
        cached = (entries, unknown, policy.problems[skipped_before:], rows)
        with _READ_LOCK:
            _READ_CACHE[key] = cached
            while len(_READ_CACHE) > _READ_CACHE_SIZE:
                _READ_CACHE.popitem(last=False)
    else:
        policy.problems.extend(cached[2])  # as reading the file again would have found them
    entries, unknown, _, rows = cached
    unreadable.extend(dict(row) for row in rows)
    return list(entries), [dict(account) for account in unknown]


@REGISTRY.register("ledger", "Bookkeeping ledger exported as CSV or kept in an XLSX workbook.", METRICS,
                   looks_back=True, data_through=("finance.data_through", "books"))
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

    unreadable: list[dict[str, Any]] = []
    entries, unknown = read_ledger_once(path, settings, chart, policy, unreadable, context)
    stale = freshness(entries, settings, context)
    if stale is not None:
        # Every figure needs the books up to the period end: all are unavailable, with the date as
        # the reason; only how far the data reaches and the row problems stay.
        return {**{spec.name: Unavailable(spec.name, stale.reason, stale.plain) for spec in METRICS},
                "finance.data_through": max(e.date for e in entries) if entries else stale,
                "finance.ledger_problems": policy.findings, "finance.unreadable_rows": unreadable}
    result["finance.data_through"] = max(e.date for e in entries)
    result.update(summarise(entries, opening, context.period_end))
    result["finance.cash_movements"] = cash_movements(entries, context.period_start, context.period_end)
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

    result.update(revenue_targets(entries, settings, context, policy))
    all_targets = result.pop(ALL_TARGETS, None)
    result.update(unit_economics(entries, settings.get("unit_economics"), context.period_end))
    result.update(profitability_roadmap(entries, result, context, all_targets))
    result.update(evaluate_rules(settings.get("rules"), entries, result, context))
    result.pop(GROSS_MARGIN_EXACT, None)
    result["finance.ledger_problems"] = policy.findings
    result["finance.unreadable_rows"] = unreadable
    result.update(briefing_figures(result, context.period_end, REGISTRY.labels, context.tenant_id))
    return result
