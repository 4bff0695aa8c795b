"""The profitability roadmap: four dated milestones from the period end through March of the next year.

Not a source of its own: the ledger source computes it from the revenue targets and the burn rate it
has just worked out, so the milestones move with the books and the targets file, never with a template.

The months ahead (from the first month not yet closed through March of the next year) are split into
four equal spans; each milestone falls on the last day of its span's last month. With the period in
late November that is the end of December, January, February and March. A period that closes
December leaves only three months to that March, so the horizon is then the March after. At each
milestone:
    revenue_target   that month's target (targets.csv)
    burn_ceiling     today's burn rate x (1 - k/4) for milestone k: a straight glide to break-even
                     (burn 0) at the fourth; 0 throughout for an entity that is not burning cash
    expense_ceiling  revenue_target + burn_ceiling: the most the month may cost at that target
    status           in progress (the period's own month, with its revenue so far) or upcoming; the
                     roadmap is recomputed every period, so its milestones are always ahead
The break-even month is the first month ahead whose target covers the average monthly expenses of
the burn window, i.e. when the plan would be profitable at today's costs.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sources.ledger.books import (
    BURN_WINDOW_MONTHS,
    CENT,
    full_months_before,
    month_key,
    monthly_totals,
    shift_month,
)
from sources.registry import SourceContext, Unavailable, is_available

ROADMAP_METRICS = ("finance.profitability_roadmap", "finance.break_even_month")
MILESTONES = 4


def months_ahead(period_end: dt.date) -> list[str]:
    """Months not yet closed at the period end, through March of the next year."""

    first = shift_month(full_months_before(period_end, 1)[0], 1)
    year = period_end.year + 1
    while True:
        months, month = [], first
        while month <= f"{year:04d}-03":
            months.append(month)
            month = shift_month(month, 1)
        if len(months) >= MILESTONES:
            return months
        year += 1


def milestone_months(ahead: list[str]) -> list[str]:
    # ceil(k * n / 4) for k = 1..4: four spans as equal as whole months allow, the last ending in March.
    return [ahead[math.ceil(k * len(ahead) / MILESTONES) - 1] for k in range(1, MILESTONES + 1)]


def month_end(month: str) -> dt.date:
    year, number = int(month[:4]), int(month[5:7])
    return dt.date(year, number, calendar.monthrange(year, number)[1])


def profitability_roadmap(entries, figures: Mapping[str, Any], context: SourceContext,
                          all_targets: Mapping[str, Decimal] | None = None) -> dict[str, Any]:
    """``all_targets``: every month of the targets file (the metric's rows cover only the report window)."""

    targets = figures.get("finance.revenue_targets")
    burn = figures.get("finance.burn_rate")
    for needed, value in (("revenue targets", targets), ("burn rate", burn)):
        if value is None or not is_available(value):
            reason = f"the {needed} {'are' if needed.endswith('s') else 'is'} unavailable" + (
                f": {value.reason}" if isinstance(value, Unavailable) else "")
            return {name: Unavailable(name, reason) for name in ROADMAP_METRICS}
    target_by_month = {row["month"]: row["target"] for row in targets} | dict(all_targets or {})
    revenue, expenses = monthly_totals(entries, context.period_end)
    current = month_key(context.period_end)
    ahead = months_ahead(context.period_end)
    start_burn = max(burn, Decimal(0))

    rows = []
    for k, month in enumerate(milestone_months(ahead), start=1):
        ceiling = (start_burn * (MILESTONES - k) / MILESTONES).quantize(CENT, rounding=ROUND_HALF_UP)
        target = target_by_month.get(month)
        in_progress = month == current
        status = "no target" if target is None else "in progress" if in_progress else "upcoming"
        rows.append({"milestone": k, "date": month_end(month), "month": month, "revenue_target": target,
                     "burn_ceiling": ceiling, "expense_ceiling": None if target is None else target + ceiling,
                     "revenue_so_far": revenue.get(month, Decimal(0)) if in_progress else None,
                     "status": status})

    window = full_months_before(context.period_end, BURN_WINDOW_MONTHS)
    average_expenses = sum((expenses.get(m, Decimal(0)) for m in window), Decimal(0)) / len(window)
    covering = [m for m in ahead if target_by_month.get(m) is not None and target_by_month[m] >= average_expenses]
    return {"finance.profitability_roadmap": rows, "finance.break_even_month": covering[0] if covering else None}
