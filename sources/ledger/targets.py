"""Monthly revenue targets (CSV: month, target) compared with the ledger's actual revenue.

The comparison runs from January of the period's year through March of the next year, so a report
in the autumn already shows the targets for the coming first quarter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sources.ledger.books import full_months_before, month_key, monthly_totals
from sources.registry import SourceContext, Unavailable
from sources.tabular import BadRowPolicy, MissingFile, RowProblem, parse_amount, read_rows

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
TARGET_METRICS = ("finance.revenue_targets", "finance.revenue_target_attainment", "finance.revenue_target_last_month")
ALL_TARGETS = "_all_targets"  # not a metric: handed from revenue_targets() to the roadmap, then dropped


def read_targets(path, policy: BadRowPolicy) -> dict[str, Decimal]:
    targets: dict[str, Decimal] = {}
    for line, row in read_rows(path, ["month", "target"], policy=policy):
        problems = []
        month = row["month"][:7] if re.fullmatch(r"\d{4}-\d{2}-01", row["month"]) else row["month"]
        if not _MONTH.match(month):
            problems.append(RowProblem(str(path), line, "month", row["month"], "not a month in YYYY-MM form"))
        elif month in targets:
            problems.append(RowProblem(str(path), line, "month", row["month"], "the month has two targets"))
        try:
            target = parse_amount(row["target"])
        except ValueError as exc:
            problems.append(RowProblem(str(path), line, "target", row["target"], str(exc)))
        if policy.reject(problems):
            continue
        targets[month] = target
    return targets


def revenue_targets(entries, settings: Mapping[str, Any], context: SourceContext,
                    policy: BadRowPolicy) -> dict[str, Any]:

    if "targets" not in settings:
        reason = "sources.ledger.targets (the monthly revenue targets file) is not set"
        return {name: Unavailable(name, reason) for name in TARGET_METRICS}
    path = context.resolve(settings["targets"])
    try:
        targets = read_targets(path, policy)
    except MissingFile as exc:
        return {name: Unavailable(name, str(exc)) for name in TARGET_METRICS}

    revenue, _ = monthly_totals(entries, context.period_end)
    last_full = full_months_before(context.period_end, 1)[0]
    current = month_key(context.period_end)
    year = context.period_end.year
    months = [f"{year:04d}-{m:02d}" for m in range(1, 13)] + [f"{year + 1:04d}-{m:02d}" for m in range(1, 4)]
    rows = []
    for month in months:
        target = targets.get(month)
        has_actual = month <= current
        actual = revenue.get(month, Decimal(0)) if has_actual else None
        if target is None:
            status = "no target"
        elif month > current:
            status = "upcoming"
        elif month > last_full:
            status = "in progress"
        else:
            status = "met" if actual >= target else "missed"
        difference = actual - target if (actual is not None and target is not None) else None
        rows.append({"month": month, "target": target, "actual": actual, "difference": difference,
                     "status": status})
    last_target = targets.get(last_full)
    if last_target is None or last_target == 0:
        attainment: Any = Unavailable("finance.revenue_target_attainment",
                                      f"{path} has no (non-zero) target for {last_full}")
    else:
        attainment = round(float(revenue.get(last_full, Decimal(0)) / last_target * 100), 1)
    # Every month of the file, not only the report window: the profitability roadmap may reach further.
    last_target_value: Any = last_target if last_target is not None else Unavailable(
        "finance.revenue_target_last_month", f"{path} has no target for {last_full}")
    return {"finance.revenue_targets": rows, "finance.revenue_target_attainment": attainment,
            "finance.revenue_target_last_month": last_target_value, ALL_TARGETS: targets}
