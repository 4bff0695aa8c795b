"""Unit economics (break-even) and the financial rules a tenant declares in its config.

Unit economics, under ``sources.ledger.unit_economics``:
    unit                 what is sold, e.g. "charter" (default "unit")
    revenue_account      the ledger account whose entries are one unit each (e.g. one charter)
    variable_categories  expense categories that grow with each unit (fuel, per-charter crew)
    excluded_categories  cash out that is not an operating cost (owner draws, loan principal)
    window_months        full months averaged (default 3)
Every other expense category is a fixed monthly cost. Break-even units = fixed monthly costs /
(price per unit - variable cost per unit).

Rules, under ``sources.ledger.rules`` (a list; each item has ``rule`` and its limit):
    min_reserve_months         months: N       cash on hand covers N months of average expenses
    max_uncategorised_expense  amount: X       no single uncategorised expense above X
    max_owner_draw_percent     percent: Y      owner draws (entries on the chart's equity accounts, or in
                               category: ...   the category, default "Owner draw") at most Y% of revenue
                                               over the burn window
    max_burn_rate              amount: X       average monthly net burn at most X
    min_gross_margin_percent   percent: Y      gross margin over the burn window at least Y%
                                               (finance.gross_margin_percent, compared unrounded;
                                               the rule's actual is given to 0.01)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sources.ledger.books import (
    BURN_WINDOW_MONTHS,
    CENT,
    GROSS_MARGIN_EXACT,
    UNCATEGORISED,
    full_months_before,
    month_key,
)
from sources.registry import REGISTRY, SourceContext, Unavailable, is_available

UNIT_METRICS = ("finance.unit_economics", "finance.break_even_units")
RULE_METRICS = ("finance.rules", "finance.rules_failed")
# What each rule is called in an email (reports use the rule_name() helper).
RULE_LABELS = {"min_reserve_months": "cash reserve", "max_uncategorised_expense": "uncategorised spending",
               "max_owner_draw_percent": "owner draws", "max_burn_rate": "burn ceiling",
               "min_gross_margin_percent": "gross margin floor"}
REGISTRY.add_labels(RULE_LABELS)  # what ``rule_name`` shows in an email


def unit_economics(entries, settings: Mapping[str, Any] | None, period_end: dt.date) -> dict[str, Any]:

    def unavailable(reason: str) -> dict[str, Any]:
        return {name: Unavailable(name, reason) for name in UNIT_METRICS}

    if not settings:
        return unavailable("sources.ledger.unit_economics is not set")
    if "revenue_account" not in settings:
        return unavailable("sources.ledger.unit_economics.revenue_account is not set")
    unit = str(settings.get("unit", "unit"))
    window_months = settings.get("window_months", 3)
    if not isinstance(window_months, int) or window_months < 1:
        return unavailable(f"sources.ledger.unit_economics.window_months must be a whole number >= 1, "
                           f"got {window_months!r}")
    variable = set(settings.get("variable_categories") or [])
    excluded = set(settings.get("excluded_categories") or [])
    window = set(full_months_before(period_end, window_months))
    in_window = [e for e in entries if month_key(e.date) in window]
    if {month_key(e.date) for e in in_window} != window:
        return unavailable(f"the ledger does not cover all of {', '.join(sorted(window))}")

    sales = [e for e in in_window if e.account == settings["revenue_account"] and e.is_revenue]
    if not sales:
        return unavailable(f"no {unit} sales on account {settings['revenue_account']!r} in "
                           f"{', '.join(sorted(window))}")
    units = len(sales)
    price = sum((e.amount for e in sales), Decimal(0)) / units
    variable_total = sum((-e.amount for e in in_window if e.is_expense and e.category in variable), Decimal(0))
    fixed_total = sum((-e.amount for e in in_window
                       if e.is_expense and e.category not in variable and e.category not in excluded), Decimal(0))
    variable_per_unit = variable_total / units
    contribution = price - variable_per_unit
    fixed_monthly = fixed_total / window_months
    figures = {
        "unit": unit,
        "months": window_months,
        "units_sold": units,
        "units_per_month": round(units / window_months, 1),
        "price_per_unit": price.quantize(CENT),
        "variable_cost_per_unit": variable_per_unit.quantize(CENT),
        "contribution_margin": contribution.quantize(CENT),
        "fixed_monthly_costs": fixed_monthly.quantize(CENT),
    }
    if contribution <= 0:
        return {"finance.unit_economics": figures,
                "finance.break_even_units": Unavailable("finance.break_even_units",
                                                        f"each {unit} costs more than it brings in")}
    return {"finance.unit_economics": figures,
            "finance.break_even_units": round(float(fixed_monthly / contribution), 1)}


def evaluate_rules(rules: Any, entries, figures: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    if rules is None:
        return {name: Unavailable(name, "sources.ledger.rules is not set") for name in RULE_METRICS}
    if not isinstance(rules, list):
        reason = f"sources.ledger.rules must be a list, got {type(rules).__name__}"
        return {name: Unavailable(name, reason) for name in RULE_METRICS}
    results = []
    for index, rule in enumerate(rules):
        where = f"sources.ledger.rules[{index}]"
        try:
            results.append(_evaluate(rule, where, entries, figures, context))
        except RuleConfigError as exc:
            return {name: Unavailable(name, str(exc)) for name in RULE_METRICS}
    return {"finance.rules": results, "finance.rules_failed": sum(1 for r in results if r["status"] == "fail")}


class RuleConfigError(ValueError):
    pass


RULES = ("min_reserve_months", "max_uncategorised_expense", "max_owner_draw_percent", "max_burn_rate",
         "min_gross_margin_percent")


def _limit(rule: Mapping[str, Any], key: str, where: str) -> Decimal:
    if key not in rule:
        raise RuleConfigError(f"{where}.{key} is not set")
    value = rule[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RuleConfigError(f"{where}.{key} must be a number, got {value!r}")
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise RuleConfigError(f"{where}.{key} must be a number, got {value!r}") from None


def _evaluate(rule: Any, where: str, entries, figures: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:

    if not isinstance(rule, Mapping) or "rule" not in rule:
        raise RuleConfigError(f"{where} must be a mapping with a 'rule' key, got {rule!r}")
    kind = rule["rule"]
    window = set(full_months_before(context.period_end, BURN_WINDOW_MONTHS))

    def result(passed: bool | None, actual: Any, limit: Any, detail: str) -> dict[str, Any]:
        status = "unavailable" if passed is None else "pass" if passed else "fail"
        return {"rule": kind, "status": status, "actual": actual, "limit": limit, "detail": detail}

    if kind == "min_reserve_months":
        months = _limit(rule, "months", where)
        cash = figures.get("finance.cash_on_hand")
        spent = [-e.amount for e in entries if e.is_expense and month_key(e.date) in window]
        if not is_available(cash) or not spent:
            return result(None, None, months, "cash on hand or the last months' expenses are unavailable")
        average = sum(spent, Decimal(0)) / len(window)
        reserve = (cash / average).quantize(Decimal("0.1"))
        row = result(reserve >= months, reserve, months,
                     f"cash {cash:,.2f} covers {reserve} months of average expenses {average:,.2f}; "
                     f"rule: at least {months}")
        return {**row, "cash": cash, "average_expenses": average.quantize(CENT)}
    if kind == "max_uncategorised_expense":
        amount = _limit(rule, "amount", where)
        uncategorised = [e for e in entries if e.is_expense and e.category == UNCATEGORISED
                         and e.date <= context.period_end]
        largest = max((-e.amount for e in uncategorised), default=Decimal(0))
        over = [e for e in uncategorised if -e.amount > amount]
        places = ", ".join(e.where for e in over)
        return result(not over, largest, amount,
                      f"{len(over)} uncategorised expense(s) above {amount:,.2f}" + (f" ({places})" if over else ""))
    if kind == "max_owner_draw_percent":
        percent = _limit(rule, "percent", where)
        category = str(rule.get("category", "Owner draw"))
        # Draws on an equity account are no longer expenses; a draw kept on an expense account still counts.
        draws = sum((-e.amount for e in entries if (e.is_draw or (e.is_expense and e.category == category))
                     and month_key(e.date) in window), Decimal(0))
        revenue = sum((e.amount for e in entries if e.is_revenue and month_key(e.date) in window), Decimal(0))
        if revenue == 0:
            return result(draws == 0, None, percent, f"owner draws {draws:,.2f} against no revenue")
        share = (draws / revenue * 100).quantize(Decimal("0.1"))
        return result(share <= percent, share, percent,
                      f"owner draws {draws:,.2f} are {share}% of revenue {revenue:,.2f} over "
                      f"{', '.join(sorted(window))}; rule: at most {percent}%")
    if kind == "max_burn_rate":
        amount = _limit(rule, "amount", where)
        burn = figures.get("finance.burn_rate")
        if not is_available(burn):
            return result(None, None, amount, f"burn rate unavailable: {burn.reason}")
        return result(burn <= amount, burn.quantize(CENT), amount,
                      f"average monthly burn {burn:,.2f}; rule: at most {amount:,.2f}")
    if kind == "min_gross_margin_percent":
        percent = _limit(rule, "percent", where)
        margin = figures.get("finance.gross_margin_percent")
        if margin is None or not is_available(margin):
            reason = margin.reason if margin is not None else "not computed"
            return result(None, None, percent, f"gross margin unavailable: {reason}")
        # Compare the unrounded margin: rounded to 0.1, 29.96% would read 30.0% and pass a 30% floor.
        exact = figures.get(GROSS_MARGIN_EXACT)
        exact = Decimal(str(margin)) if exact is None else exact
        actual = exact.quantize(CENT)
        return result(exact >= percent, actual, percent,
                      f"gross margin {actual}% over {', '.join(sorted(window))}; rule: at least {percent}%")
    raise RuleConfigError(f"{where}.rule: unknown rule {kind!r} (known: {', '.join(RULES)})")
