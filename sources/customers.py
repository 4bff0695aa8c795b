"""Customers source: the acquisition funnel, customer acquisition cost (CAC) and churn, from a CSV of
sign-ups kept per tenant (a CRM or booking-system export).

One row per person or company that signed up (an enquiry, a lead, a trial): columns
    customer_id          unique per row
    signup_date          YYYY-MM-DD, when they first signed up or enquired
    acquisition_channel  where they came from (Email list, Instagram, Referral, ...)
    acquisition_cost     what it cost to acquire the sign-up (campaign spend attributed to it; 0 allowed)
    first_purchase_date  YYYY-MM-DD of the first paid purchase; blank: never bought (not a customer)
    churn_date           YYYY-MM-DD when they stopped being a customer; blank: still a customer
    monthly_value        optional column: what a customer brings in a month (for the CAC payback)

Everything is measured over a trailing window ending at the period end (``window_days``, default 90):
a week is too short to see churn in a small business. Dates after the period end count as "not yet".

Settings (under ``sources.customers``): ``path`` (the CSV), ``window_days`` (default 90), ``on_bad_row``
(fail | skip).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sources.errors import SourceError
from sources.registry import REGISTRY, MetricSpec, SourceContext, Unavailable
from sources.tabular import BadRowPolicy, RowProblem, parse_amount, parse_date, read_rows

DEFAULT_WINDOW_DAYS = 90
REQUIRED_COLUMNS = ["customer_id", "signup_date", "acquisition_channel", "acquisition_cost",
                    "first_purchase_date", "churn_date"]

_WINDOW = "the trailing window (window_days, default 90 days) ending at the period end"
METRICS = [
    MetricSpec("customers.window_days", "Length in days of " + _WINDOW + ".", "number"),
    MetricSpec("customers.window_start", "First day of " + _WINDOW + ".", "date"),
    MetricSpec("customers.signups", "Sign-ups (leads) whose signup_date falls in " + _WINDOW + ".", "number", better='up', total=True),
    MetricSpec("customers.funnel", "The window's sign-up cohort through the funnel (rows: stage, count, "
               "percent_of_previous): signed up in the window, became customers by the period end (first "
               "purchase), still customers at the period end (not churned).", "table"),
    MetricSpec("customers.signups_converted", "How many of the window's sign-ups became customers by the period "
               "end (first purchase on or before it).", "number", total=True),
    MetricSpec("customers.signups_retained", "How many of the window's sign-ups are customers at the period end "
               "(bought and not churned): the funnel's last stage.", "number"),
    MetricSpec("customers.conversion_percent", "Share of the window's sign-ups that became customers by the "
               "period end, in percent.", "percent", better='up',
               portfolio_ratio=("customers.signups_converted", "customers.signups", 100)),
    MetricSpec("customers.acquisition_spend", "Acquisition cost of the window's sign-ups (sum of "
               "acquisition_cost).", "money", better='down', total=True),
    MetricSpec("customers.cac", "Customer acquisition cost: acquisition spend on the window's sign-ups divided "
               "by how many of them became customers by the period end.", "money", better='down',
               portfolio_ratio=("customers.acquisition_spend", "customers.signups_converted", 1)),
    MetricSpec("customers.cac_by_channel", "CAC per acquisition channel for the window's sign-ups, most spend "
               "first (rows: channel, signups, customers, spend, cac; cac is empty when no sign-up of the channel "
               "became a customer).", "table"),
    MetricSpec("customers.new_customers", "Customers whose first purchase falls in " + _WINDOW
               + " (whenever they signed up).", "number", better='up', total=True),
    MetricSpec("customers.active_at_start", "Customers at the start of the window: first purchase before it, "
               "not churned before it.", "number", total=True),
    MetricSpec("customers.churned", "Customers lost in the window: churn_date in " + _WINDOW + ".", "number"),
    MetricSpec("customers.churn_rate", "Churn over the window, in percent: customers at the start of the window "
               "who churned during it, divided by the customers at the start.", "percent", better='down',
               portfolio_ratio=("customers.lost_of_start", "customers.active_at_start", 100)),
    MetricSpec("customers.lost_of_start", "Customers at the start of the window who churned during it (what "
               "customers.churn_rate divides by customers.active_at_start).", "number", total=True),
    MetricSpec("customers.active_customers", "Customers at the period end: first purchase on or before it, not "
               "churned on or before it.", "number"),
    MetricSpec("customers.net_new_customers", "New customers minus customers lost in the window (equals active "
               "customers at the end minus at the start).", "number", better='up', total=True),
    MetricSpec("customers.average_monthly_value", "Average monthly_value of the customers at the period end "
               "(rows with a blank monthly_value left out).", "money"),
    MetricSpec("customers.cac_payback_months", "Months for a customer's monthly value to pay back the CAC "
               "(CAC / average monthly value).", "months"),
    MetricSpec("customers.problems", "Customer rows left out under on_bad_row: skip.", "list"),
]


def window_days(settings: Mapping[str, Any], tenant_id: str) -> int:
    days = settings.get("window_days", DEFAULT_WINDOW_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or days < 7:
        raise SourceError(f"tenant '{tenant_id}': sources.customers.window_days must be a whole number of days, "
                          f"at least 7, got {days!r}")
    return days


def _cell(path, line: int, row: Mapping[str, str], column: str, message: str) -> RowProblem:
    return RowProblem(str(path), line, column, row.get(column, ""), message)


def read_customers(path, policy: BadRowPolicy) -> list[dict[str, Any]]:
    customers: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line, row in read_rows(path, REQUIRED_COLUMNS, policy=policy):
        problems: list[RowProblem] = []

        customer_id = row["customer_id"]
        if not customer_id:
            problems.append(_cell(path, line, row, "customer_id", "is empty"))
        elif customer_id in seen:
            problems.append(_cell(path, line, row, "customer_id", "appears twice"))
        dates: dict[str, dt.date | None] = {}
        for column in ("signup_date", "first_purchase_date", "churn_date"):
            text = row[column]
            if not text and column != "signup_date":
                dates[column] = None
                continue
            try:
                dates[column] = parse_date(text)
            except ValueError as exc:
                problems.append(_cell(path, line, row, column, str(exc)))
        try:
            cost = parse_amount(row["acquisition_cost"]) if row["acquisition_cost"] else Decimal(0)
            if cost < 0:
                problems.append(_cell(path, line, row, "acquisition_cost", "a cost cannot be negative"))
        except ValueError as exc:
            problems.append(_cell(path, line, row, "acquisition_cost", str(exc)))
        monthly: Decimal | None = None
        if row.get("monthly_value"):
            try:
                monthly = parse_amount(row["monthly_value"])
                if monthly < 0:
                    problems.append(_cell(path, line, row, "monthly_value", "cannot be negative"))
            except ValueError as exc:
                problems.append(_cell(path, line, row, "monthly_value", str(exc)))
        if not problems:
            signup, bought, churned = dates["signup_date"], dates["first_purchase_date"], dates["churn_date"]
            if bought is not None and bought < signup:
                problems.append(_cell(path, line, row, "first_purchase_date", "is before the signup_date"))
            if churned is not None and bought is None:
                problems.append(_cell(path, line, row, "churn_date", "a churn date needs a first_purchase_date (only customers can churn)"))
            elif churned is not None and churned < bought:
                problems.append(_cell(path, line, row, "churn_date", "is before the first_purchase_date"))
        if policy.reject(problems):
            continue
        seen.add(customer_id)
        customers.append({"id": customer_id, "signup": dates["signup_date"],
                          "channel": row["acquisition_channel"] or "Unknown", "cost": cost,
                          "bought": dates["first_purchase_date"], "churned": dates["churn_date"],
                          "monthly_value": monthly})
    return customers


def _is_customer_on(customer: Mapping[str, Any], day: dt.date) -> bool:
    """A customer at the end of ``day``: bought on or before it and not churned on or before it."""
    return (customer["bought"] is not None and customer["bought"] <= day
            and (customer["churned"] is None or customer["churned"] > day))


def _percent(part: int, whole: int) -> float | None:
    return round(part / whole * 100, 1) if whole else None


@REGISTRY.register("customers", "Customer sign-ups with channel, cost, first purchase and churn, kept as CSV.",
                   METRICS, looks_back=True)
def gather_customers(settings: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    if "path" not in settings:
        raise SourceError(f"tenant '{context.tenant_id}': sources.customers.path is not set")
    days = window_days(settings, context.tenant_id)
    policy = BadRowPolicy(settings, "customers", context.tenant_id, context.base_dir)
    everyone = read_customers(context.resolve(settings["path"]), policy)
    end = context.period_end
    start = end - dt.timedelta(days=days - 1)
    before = start - dt.timedelta(days=1)

    cohort = [c for c in everyone if start <= c["signup"] <= end]
    converted = [c for c in cohort if c["bought"] is not None and c["bought"] <= end]
    retained = [c for c in converted if _is_customer_on(c, end)]
    spend = sum((c["cost"] for c in cohort), Decimal(0))
    at_start = [c for c in everyone if _is_customer_on(c, before)]
    at_end = [c for c in everyone if _is_customer_on(c, end)]
    new_customers = sum(1 for c in everyone if c["bought"] is not None and start <= c["bought"] <= end)
    churned = sum(1 for c in everyone if c["churned"] is not None and start <= c["churned"] <= end)
    lost_from_start = sum(1 for c in at_start if c["churned"] is not None and c["churned"] <= end)

    window_text = f"in the last {days} days"
    cac: Any = (spend / len(converted)).quantize(Decimal("0.01")) if converted else Unavailable(
        "customers.cac", f"none of the {len(cohort)} sign-ups {window_text} became a customer",
        plain=f"no sign-up {window_text} has become a customer yet")
    values = [c["monthly_value"] for c in at_end if c["monthly_value"] is not None]
    average_value: Any = (sum(values, Decimal(0)) / len(values)).quantize(Decimal("0.01")) if values else \
        Unavailable("customers.average_monthly_value", "no current customer has a monthly_value",
                    plain="no monthly value is recorded for the current customers")
    if isinstance(cac, Unavailable) or isinstance(average_value, Unavailable) or not average_value:
        payback: Any = Unavailable("customers.cac_payback_months", "needs both the CAC and a non-zero average "
                                   "monthly value", plain="needs both the CAC and the customers' monthly value")
    else:
        payback = round(float(cac / average_value), 1)
    churn_rate: Any = _percent(lost_from_start, len(at_start))
    if churn_rate is None:
        churn_rate = Unavailable("customers.churn_rate", f"no customers at the window start ({start})",
                                 plain="no customers at the start of the window to measure churn against")
    return {
        "customers.window_days": days,
        "customers.window_start": start,
        "customers.signups": len(cohort),
        "customers.funnel": [
            {"stage": "Signed up", "count": len(cohort), "percent_of_previous": None},
            {"stage": "Became customers", "count": len(converted),
             "percent_of_previous": _percent(len(converted), len(cohort))},
            {"stage": "Still customers", "count": len(retained),
             "percent_of_previous": _percent(len(retained), len(converted))},
        ],
        "customers.signups_converted": len(converted),
        "customers.signups_retained": len(retained),
        "customers.conversion_percent": _percent(len(converted), len(cohort)) if cohort else Unavailable(
            "customers.conversion_percent", f"no sign-ups {window_text}", plain=f"no sign-ups {window_text}"),
        "customers.acquisition_spend": spend,
        "customers.cac": cac,
        "customers.cac_by_channel": cac_by_channel(cohort, end),
        "customers.new_customers": new_customers,
        "customers.active_at_start": len(at_start),
        "customers.churned": churned,
        "customers.lost_of_start": lost_from_start,
        "customers.churn_rate": churn_rate,
        "customers.active_customers": len(at_end),
        "customers.net_new_customers": len(at_end) - len(at_start),
        "customers.average_monthly_value": average_value,
        "customers.cac_payback_months": payback,
        "customers.problems": policy.findings,
    }


def cac_by_channel(cohort: list[dict[str, Any]], end: dt.date) -> list[dict[str, Any]]:
    channels: dict[str, dict[str, Any]] = {}
    for c in cohort:
        row = channels.setdefault(c["channel"], {"channel": c["channel"], "signups": 0, "customers": 0,
                                                 "spend": Decimal(0)})
        row["signups"] += 1
        row["spend"] += c["cost"]
        if c["bought"] is not None and c["bought"] <= end:
            row["customers"] += 1
    rows = sorted(channels.values(), key=lambda r: (-r["spend"], r["channel"]))
    for row in rows:
        row["cac"] = (row["spend"] / row["customers"]).quantize(Decimal("0.01")) if row["customers"] else None
    return rows
