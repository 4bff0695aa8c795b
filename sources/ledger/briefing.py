"""Figures the finance briefs show that are worked from the other ledger figures, each defined here once
so that no template computes it and two briefs that show it show the same number: the month's cash
outflow (burn plus owner draws, what runway divides by), the last full month and the recent months a
chart shows, revenue against target year to date, each financial rule in words with the reserve
shortfall, the break-even gap, and where each entity's next dollar goes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sources.ledger.books import BURN_WINDOW_MONTHS, CENT, full_months_before
from sources.registry import MetricSpec, Unavailable, is_available

# How many full months the briefs' charts show.
RECENT_MONTHS = 6

METRICS = [
    MetricSpec("finance.last_full_month", "The last calendar month that ended on or before the period end "
               "(\"2026-10\"): the month 'last month' figures are of.", "text"),
    MetricSpec("finance.monthly_outflow", f"What leaves the bank in an average month of the last "
               f"{BURN_WINDOW_MONTHS} full months: the burn rate plus the average owner draws. Runway is cash on "
               "hand divided by it; the portfolio's runway is its total cash over its total outflow.", "money",
               better="down", total=True),
    MetricSpec("finance.monthly_recent", f"finance.monthly for the last {RECENT_MONTHS} full months (rows: month, "
               "revenue, expenses, net, draws).", "table"),
    MetricSpec("finance.revenue_targets_recent", f"finance.revenue_targets for the last {RECENT_MONTHS} full months "
               "(rows: month, target, actual, difference, status).", "table"),
    MetricSpec("finance.revenue_targets_around", "finance.revenue_targets from 4 full months before the period "
               "end through March of the next year: how the last months went and what the months ahead ask for "
               "(rows: month, target, actual, difference, status).", "table"),
    MetricSpec("finance.revenue_year_to_date", "Revenue of the months of the period's year that ended and have a "
               "target.", "money", better="up", total=True, target="finance.target_year_to_date"),
    MetricSpec("finance.target_year_to_date", "The revenue targets of the same months.", "money", total=True),
    MetricSpec("finance.target_months_met", "How many of those months met their target, out of "
               "finance.target_months_counted.", "number", better="up"),
    MetricSpec("finance.target_months_counted", "How many ended months of the year have a target.", "number"),
    MetricSpec("finance.rules_holding", "How many of the financial rules hold.", "number", better="up"),
    MetricSpec("finance.failing_rules", "The financial rules that do not hold, by name, for a sentence: \"the cash "
               "reserve and gross margin floor rules\", \"the cash reserve rule\"; \"\" when every rule holds.",
               "text"),
    MetricSpec("finance.reserve_shortfall", "Cash the reserve rule still asks for: its months times the average "
               f"expenses of the last {BURN_WINDOW_MONTHS} full months, minus cash on hand; 0 when the rule holds.",
               "money", better="down", total=True),
    MetricSpec("finance.break_even_gap", "Units a month short of break-even (break-even units minus units sold a "
               "month), and the revenue they would bring at today's price (keys: units, revenue); 0 units when "
               "covered.", "mapping"),
    MetricSpec("finance.draws_in_books", "Owner draws over every month of the books up to the period end.",
               "money", total=True),
    MetricSpec("finance.bookkeeping_gaps", "What the books lack, each \"yes\" or \"no (N)\": chart (every entry on an "
               "account of the chart), categorised (no uncategorised expense), readable (every ledger row read), "
               "costing (unit economics set up), targets (revenue targets set); gaps: how many are not \"yes\".",
               "mapping"),
    MetricSpec("finance.bookkeeping_findings", "Where each bookkeeping finding is (file:line of an unreadable row, "
               "an uncategorised expense, an account not on the chart), for the run summary, never an email.",
               "list"),
    MetricSpec("finance.roadmap_end", "The last profitability milestone against today (keys: month, date, "
               "revenue_target, expense_ceiling, cut = last month's expenses minus that ceiling, break_even_from = the "
               "first month whose target covers today's average costs, or \"no month ahead\").", "mapping"),
    MetricSpec("finance.next_dollar", "Where the entity's next dollar goes, by the first rule that does not hold "
               "(keys: reserve, controls, break_even, goes_to): reserve, then the other financial rules, then "
               "break-even, then growth.", "mapping"),
]


def rules_in_words(names: list[str]) -> str:
    """["cash reserve", "gross margin floor"] -> "the cash reserve and gross margin floor rules"."""
    if not names:
        return ""
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"the {listed} rule{'s' if len(names) > 1 else ''}"


def briefing_figures(figures: Mapping[str, Any], period_end: dt.date, labels: Mapping[str, str],
                     tenant_id: str = "") -> dict[str, Any]:
    """The metrics above from the ledger's own figures (``labels``: a rule id's plain name)."""
    last_full = full_months_before(period_end, 1)[0]
    recent = set(full_months_before(period_end, RECENT_MONTHS))
    result: dict[str, Any] = {"finance.last_full_month": last_full}
    monthly = figures.get("finance.monthly")
    result["finance.monthly_recent"] = [row for row in monthly if row["month"] in recent] \
        if is_available(monthly) else monthly
    result["finance.monthly_outflow"] = monthly_outflow(figures, period_end)
    result.update(year_to_date(figures.get("finance.revenue_targets"), recent, period_end))
    rules = figures.get("finance.rules")
    if rules is not None and is_available(rules):
        worded = [word_rule(rule, labels) for rule in rules]
        result["finance.rules"] = worded
        result["finance.rules_holding"] = sum(1 for rule in worded if rule["status"] == "pass")
        result["finance.failing_rules"] = rules_in_words([rule["name"][:1].lower() + rule["name"][1:]
                                                          for rule in worded if rule["status"] == "fail"])
        reserve = [rule for rule in worded if rule["rule"] == "min_reserve_months"]
        result["finance.reserve_shortfall"] = reserve[0]["shortfall"] if reserve and reserve[0]["shortfall"] \
            is not None else Unavailable("finance.reserve_shortfall", "no min_reserve_months rule")
    else:
        for name in ("finance.rules_holding", "finance.reserve_shortfall", "finance.failing_rules"):
            result[name] = Unavailable(name, rules.reason if isinstance(rules, Unavailable) else "no rules")
    result["finance.break_even_gap"] = break_even_gap(figures)
    monthly_rows = monthly if is_available(monthly) else []
    result["finance.draws_in_books"] = sum((row["draws"] for row in monthly_rows), Decimal(0)) \
        if is_available(monthly) else monthly
    result["finance.bookkeeping_gaps"] = bookkeeping_gaps(figures)
    result["finance.bookkeeping_findings"] = [f"{tenant_id}: {finding}" if tenant_id else finding
                                              for finding in bookkeeping_findings(figures)]
    result["finance.roadmap_end"] = roadmap_end(figures)
    result["finance.next_dollar"] = next_dollar(result.get("finance.rules", rules), result["finance.break_even_gap"],
                                                figures.get("finance.unit_economics"), labels)
    return result


def monthly_outflow(figures: Mapping[str, Any], period_end: dt.date) -> Any:
    burn, monthly = figures.get("finance.burn_rate"), figures.get("finance.monthly")
    if not is_available(burn) or not is_available(monthly):
        return burn if not is_available(burn) else monthly
    window = set(full_months_before(period_end, BURN_WINDOW_MONTHS))
    draws = sum((row["draws"] for row in monthly if row["month"] in window), Decimal(0))
    return (burn + draws / BURN_WINDOW_MONTHS).quantize(CENT)


def year_to_date(targets: Any, recent: set[str], period_end: dt.date) -> dict[str, Any]:
    names = ("finance.revenue_year_to_date", "finance.target_year_to_date", "finance.target_months_met",
             "finance.target_months_counted")
    if targets is None or not is_available(targets):
        reason = targets.reason if isinstance(targets, Unavailable) else "no revenue targets"
        return {name: Unavailable(name, reason) for name in (*names, "finance.revenue_targets_recent",
                                                             "finance.revenue_targets_around")}
    year = f"{period_end.year:04d}"
    done = [row for row in targets if row["status"] in ("met", "missed") and row["month"].startswith(year)]
    first = full_months_before(period_end, 4)[0]
    return {"finance.revenue_targets_recent": [row for row in targets if row["month"] in recent],
            "finance.revenue_targets_around": [row for row in targets if row["month"] >= first],
            "finance.revenue_year_to_date": sum((row["actual"] for row in done), Decimal(0)),
            "finance.target_year_to_date": sum((row["target"] for row in done), Decimal(0)),
            "finance.target_months_met": sum(1 for row in done if row["status"] == "met"),
            "finance.target_months_counted": len(done)}


def _money(value: Any, cents: bool = False) -> str:
    amount = Decimal(str(value))
    return f"{'-' if amount < 0 else ''}${abs(amount):,.{2 if cents else 0}f}"


def _number(value: Any, digits: int = 1) -> str:
    return f"{Decimal(str(value)):,.{digits}f}"


def word_rule(rule: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """The rule row with its plain name, its state in a word and what it says, and for the reserve rule
    the shortfall in dollars (cash it asks for beyond cash on hand)."""
    kind, actual, limit = rule["rule"], rule["actual"], rule["limit"]
    shortfall = None
    if actual is None:
        says = "can't be checked: the figures it needs are missing"
    elif kind == "min_reserve_months":
        says = f"cash covers {_number(actual)} months of expenses; at least {_number(limit, 0)} required"
        # actual = cash / average expenses, so the rule asks for limit x average = cash x limit / actual.
        cash, average = rule.get("cash"), rule.get("average_expenses")
        if cash is not None and average is not None:
            shortfall = max(Decimal(0), (limit * average - cash)).quantize(CENT)
    elif kind == "max_uncategorised_expense":
        says = f"largest uncategorised expense {_money(actual, cents=True)}; at most {_money(limit)} allowed"
    elif kind == "max_owner_draw_percent":
        says = f"owner draws are {_number(actual)}% of revenue; at most {_number(limit, 0)}% allowed"
    elif kind == "max_burn_rate":
        says = f"average monthly burn {_money(actual)}; at most {_money(limit)} allowed"
    elif kind == "min_gross_margin_percent":
        # A failing margin that rounds to the floor is shown to 0.01, so it does not read as meeting it.
        digits = 2 if rule["status"] == "fail" and _number(actual) == _number(limit) else 1
        says = f"gross margin {_number(actual, digits)}% over the last 3 months; at least {_number(limit, 0)}% required"
    else:
        says = f"{_number(actual)} against a limit of {_number(limit)}"
    state = {"pass": "holds", "fail": "fails"}.get(rule["status"], "unknown")
    return {**rule, "name": labels.get(kind, kind.replace("_", " ")).capitalize(), "state": state, "says": says,
            "shortfall": shortfall}


def break_even_gap(figures: Mapping[str, Any]) -> Any:
    units, economics = figures.get("finance.break_even_units"), figures.get("finance.unit_economics")
    if units is None or not is_available(units):
        return units if units is not None else Unavailable("finance.break_even_gap", "no break-even figure")
    if economics is None or not is_available(economics):
        return economics
    short = max(Decimal(0), Decimal(str(units)) - Decimal(str(economics["units_per_month"])))
    return {"units": float(short), "revenue": (short * economics["price_per_unit"]).quantize(CENT),
            "unit": economics["unit"]}


def next_dollar(rules: Any, gap: Any, economics: Any, labels: Mapping[str, str]) -> dict[str, str]:
    """Reserve first, then the other rules, then break-even, then growth (the CFO's capital order)."""
    rules = rules if rules is not None and is_available(rules) else []
    reserve = [rule for rule in rules if rule["rule"] == "min_reserve_months"]
    failing = [rule for rule in rules if rule["rule"] != "min_reserve_months" and rule["status"] == "fail"]
    below = is_available(gap) and isinstance(gap, dict) and gap["units"] > 0
    row = {"reserve": "no rule", "controls": f"fails {len(failing)}" if failing else "hold",
           "break_even": "not set up" if economics is None or not is_available(economics) else
           f"{_number(gap['units'])} {gap['unit']}s/mo short" if below else "covered"}
    short = reserve[0].get("shortfall") if reserve else None
    if reserve:
        row["reserve"] = f"short {_money(short)}" if reserve[0]["status"] == "fail" and short is not None else \
            "holds" if reserve[0]["status"] == "pass" else "unknown"
    if reserve and reserve[0]["status"] == "fail" and short is not None:
        row["goes_to"] = f"Reserve, up to {_money(short)}"
    elif failing:
        names = ", ".join(labels.get(rule["rule"], rule["rule"]) for rule in failing)
        row["goes_to"] = f"Nothing new until the {names} {'rules pass' if len(failing) > 1 else 'rule passes'}"
    elif below:
        row["goes_to"] = f"Selling more {gap['unit']}s"
    else:
        row["goes_to"] = "Growth or debt paydown"
    return row


def _yes_or_count(value: Any) -> str:
    if value is None or not is_available(value):
        return "unknown"
    return f"no ({len(value)})" if value else "yes"


def bookkeeping_gaps(figures: Mapping[str, Any]) -> dict[str, Any]:
    targets = figures.get("finance.revenue_targets")
    gaps = {"chart": _yes_or_count(figures.get("finance.unknown_accounts")),
            "categorised": _yes_or_count(figures.get("finance.uncategorised_expenses")),
            "readable": _yes_or_count(figures.get("finance.ledger_problems")),
            "costing": "yes" if is_available(figures.get("finance.unit_economics", Unavailable("", ""))) else "no",
            "targets": "yes" if targets is not None and is_available(targets) and any(r["target"] for r in targets)
            else "no"}
    return {**gaps, "gaps": sum(1 for value in gaps.values() if value != "yes")}


def bookkeeping_findings(figures: Mapping[str, Any]) -> list[str]:
    findings = []
    for name, describe in (("finance.ledger_problems", lambda p: f"ledger row left out: {p}"),
                           ("finance.uncategorised_expenses",
                            lambda e: f"uncategorised expense {e['date']} {e['amount']:.2f} at {e['where']}"),
                           ("finance.unknown_accounts",
                            lambda a: f"account {a['account']} not in the chart, first at {a['first_seen']}")):
        value = figures.get(name)
        if value is not None and is_available(value):
            findings.extend(describe(item) for item in value)
    return findings


def roadmap_end(figures: Mapping[str, Any]) -> Any:
    roadmap = figures.get("finance.profitability_roadmap")
    if roadmap is None or not is_available(roadmap) or not roadmap:
        return roadmap if roadmap is not None and not is_available(roadmap) else \
            Unavailable("finance.roadmap_end", "no roadmap")
    last = roadmap[-1]
    expenses = figures.get("finance.expenses_last_month")
    ceiling = last["expense_ceiling"]
    cut = expenses - ceiling if ceiling is not None and expenses is not None and is_available(expenses) else None
    month = figures.get("finance.break_even_month")
    when = dt.date(int(month[:4]), int(month[5:7]), 1).strftime("%b %Y") if month else "no month ahead"
    return {"month": dt.date(int(last["month"][:4]), int(last["month"][5:7]), 1).strftime("%B %Y"),
            "date": last["date"], "revenue_target": last["revenue_target"], "expense_ceiling": ceiling, "cut": cut,
            "break_even_from": when}
