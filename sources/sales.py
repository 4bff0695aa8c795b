"""Sales pipeline source: deals kept as CSV (deal, stage, value, expected_close).

Stages: lead, qualified, proposal, negotiation (open) and won, lost (closed). A header-only file is
a real, empty pipeline (zero deals), which is different from a missing file (unavailable).
Settings (under ``sources.sales``): ``pipeline`` (the CSV path), ``on_bad_row`` (fail | skip).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sources.errors import SourceError
from sources.registry import REGISTRY, MetricSpec, SourceContext
from sources.tabular import BadRowPolicy, RowProblem, parse_amount, parse_date, read_rows

OPEN_STAGES = ("lead", "qualified", "proposal", "negotiation")
CLOSED_STAGES = ("won", "lost")

METRICS = [
    MetricSpec("sales.open_deal_count", "Number of deals in an open stage.", "number"),
    MetricSpec("sales.open_pipeline_value", "Total value of the open deals.", "money", better="up", total=True),
    MetricSpec("sales.open_deals", "Open deals, soonest expected close first "
               "(rows: deal, stage, value, expected_close, overdue).", "table"),
    MetricSpec("sales.overdue_deals", "Open deals whose expected close date is already past at the period "
               "end (rows: deal, stage, value, expected_close).", "table"),
    MetricSpec("sales.won_value_period", "Value of deals won with a close date inside the period.", "money"),
    MetricSpec("sales.pipeline_problems", "Pipeline rows left out under on_bad_row: skip.", "list"),
]


@REGISTRY.register("sales", "Sales pipeline of deals, kept as CSV.", METRICS)
def gather_sales(settings: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    if "pipeline" not in settings:
        raise SourceError(f"tenant '{context.tenant_id}': sources.sales.pipeline is not set")
    path = context.resolve(settings["pipeline"])
    policy = BadRowPolicy(settings, "sales", context.tenant_id, context.base_dir)
    deals = []
    for line, row in read_rows(path, ["deal", "stage", "value", "expected_close"], policy=policy):
        problems = []
        stage = row["stage"].lower()
        if stage not in OPEN_STAGES + CLOSED_STAGES:
            problems.append(RowProblem(str(path), line, "stage", row["stage"],
                                       f"expected one of {', '.join(OPEN_STAGES + CLOSED_STAGES)}"))
        try:
            value = parse_amount(row["value"])
            if value < 0:
                problems.append(RowProblem(str(path), line, "value", row["value"], "a deal cannot be negative"))
        except ValueError as exc:
            problems.append(RowProblem(str(path), line, "value", row["value"], str(exc)))
        try:
            close = parse_date(row["expected_close"])
        except ValueError as exc:
            problems.append(RowProblem(str(path), line, "expected_close", row["expected_close"], str(exc)))
        if policy.reject(problems):
            continue
        deals.append({"deal": row["deal"], "stage": stage, "value": value, "expected_close": close,
                      "overdue": stage in OPEN_STAGES and close < context.period_end})
    open_deals = sorted((d for d in deals if d["stage"] in OPEN_STAGES),
                        key=lambda d: (d["expected_close"], d["deal"]))
    won = [d for d in deals if d["stage"] == "won"
           and context.period_start <= d["expected_close"] <= context.period_end]
    return {
        "sales.open_deal_count": len(open_deals),
        "sales.open_pipeline_value": sum((d["value"] for d in open_deals), Decimal(0)),
        "sales.open_deals": open_deals,
        "sales.overdue_deals": [{k: d[k] for k in ("deal", "stage", "value", "expected_close")}
                                for d in open_deals if d["overdue"]],
        "sales.won_value_period": sum((d["value"] for d in won), Decimal(0)),
        "sales.pipeline_problems": policy.findings,
    }
