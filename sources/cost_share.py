"""What the reports' own AWS services cost against revenue: a derived source over the aws and ledger metrics.

Settings (per tenant, under ``sources.cost_share``; ``{}`` takes every default):
    services             label -> Cost Explorer service names counted under it; default
                         {"Email sending (SES)": [Amazon Simple Email Service],
                          "Lambda execution": [AWS Lambda], "Data transfer": [AWS Data Transfer]}
    renewal_window_days  domains expiring within this many days of the period end are "upcoming" (90)

Inside a run the aws and ledger metrics are gathered once with everything else and this computes from
them; nothing is read twice. The month compared is the last full month before the period end, against
the ledger's revenue of the same month. Cost Explorer rows only list months that had a cost, so a month
without rows cannot be told apart from one Cost Explorer did not cover: the figures are then
unavailable ("no Cost Explorer figures for 2026-10") rather than read as $0 or taken from an older month.
Domain registrations count at a twelfth of their yearly renewal price per month; domains whose renewal
price is not listed are left out of the cost and counted (costs.domains_unpriced) so the reports say so.
A domain already past its expiry date is listed among the renewals (days_left negative, expired true),
first, since it is the most urgent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sources.errors import SourceError
from sources.registry import REGISTRY, MetricSpec, SourceContext, Unavailable, is_available

DEFAULT_SERVICES = {"Email sending (SES)": ["Amazon Simple Email Service"], "Lambda execution": ["AWS Lambda"],
                    "Data transfer": ["AWS Data Transfer"]}
DOMAINS_LABEL = "Domain registrations"
SERVICE_METRICS = ("costs.report_services", "costs.report_services_total", "costs.report_services_percent")
INPUTS = ["aws.monthly_cost_by_service", "aws.domain_registrations", "finance.monthly"]

METRICS = [
    MetricSpec("costs.report_services", "The AWS services the reports depend on (SES, Lambda, data transfer) and "
               "domain registrations (a twelfth of the yearly renewal), in the last full month, against that "
               "month's revenue (rows: item, month, cost, revenue, percent_of_revenue).", "table"),
    MetricSpec("costs.report_services_total", "The costs.report_services items added up (last full month).",
               "money", better="down", total=True),
    MetricSpec("costs.report_services_percent", "Those costs together as a percentage of the last full month's "
               "revenue.", "percent", better="down",
               portfolio_ratio=("costs.report_services_total", "finance.revenue_last_month", 100)),
    MetricSpec("costs.domain_renewals", "Registered domains expiring within renewal_window_days (default 90) of "
               "the period end or already expired, soonest first (rows: domain, expires, days_left, expired, "
               "auto_renew, renewal_price, when (\"in 17 days\", \"expired 3 days ago\"), renews (\"yes\" or \"no: "
               "renew by hand\"); days_left is negative for an expired domain).", "table"),
    MetricSpec("costs.renewal_window_days", "How many days after the period end costs.domain_renewals looks "
               "(the renewal_window_days setting, default 90).", "number"),
    MetricSpec("costs.domains_unpriced", "Registered domains whose renewal price is not listed in USD, left out "
               "of costs.domains_annual_cost and the monthly domain cost.", "number"),
    MetricSpec("costs.domains_annual_cost", "The yearly renewal price of every registered domain, added up "
               "(USD; domains whose price is not listed are left out).", "money"),
]


def _settings(settings: Mapping[str, Any], context: SourceContext) -> tuple[dict[str, list[str]], int]:
    where = f"tenant '{context.tenant_id}': sources.cost_share"
    services = settings.get("services", DEFAULT_SERVICES)
    if not isinstance(services, Mapping) or not all(
            isinstance(v, list) and all(isinstance(n, str) for n in v) for v in services.values()):
        raise SourceError(f"{where}.services must map each label to a list of Cost Explorer service names")
    if not services:
        # With no services and no domain figures there would be no rows at all; leave the key out for the
        # defaults instead.
        raise SourceError(f"{where}.services is empty: name at least one label with its Cost Explorer service "
                          "names, or leave the key out for the defaults")
    days = settings.get("renewal_window_days", 90)
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise SourceError(f"{where}.renewal_window_days must be a whole number of at least 1, got {days!r}")
    return dict(services), days


@REGISTRY.register("cost_share", "AWS costs of the reports' own services and domains against revenue "
                   "(computed from the aws and ledger metrics).", METRICS)
def gather_cost_share(settings: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    """Standalone: gathers the aws and ledger metrics itself. A run derives instead (``cost_share``)."""
    sources = context.tenant_settings.get("sources") or {}
    values: dict[str, Any] = {}
    values.update(REGISTRY.gather("aws", INPUTS[:2], sources.get("aws"), context))
    values.update(REGISTRY.gather("ledger", INPUTS[2:], sources.get("ledger"), context))
    return cost_share(settings, values, context)


def cost_share(settings: Mapping[str, Any], values: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    services, window_days = _settings(settings, context)
    from sources.ledger.books import full_months_before

    result: dict[str, Any] = {"costs.renewal_window_days": window_days}
    domains = values.get("aws.domain_registrations")
    if domains is None or not is_available(domains):
        reason = f"domain registrations unavailable: {domains.reason if domains is not None else 'not gathered'}"
        for name in ("costs.domain_renewals", "costs.domains_annual_cost", "costs.domains_unpriced"):
            result[name] = Unavailable(name, reason)
    else:
        horizon = context.period_end + dt.timedelta(days=window_days)
        upcoming = []
        for row in domains:
            if row["expires"] is None:
                continue
            expires = dt.date.fromisoformat(row["expires"])
            if expires <= horizon:
                days_left = (expires - context.period_end).days
                upcoming.append({"domain": row["domain"], "expires": expires, "days_left": days_left,
                                 "expired": days_left < 0, "auto_renew": row["auto_renew"],
                                 "renewal_price": row["renewal_price"],
                                 "when": (f"expired {-days_left} day{'s' if days_left != -1 else ''} ago"
                                          if days_left < 0 else f"in {days_left} day{'s' if days_left != 1 else ''}"),
                                 "renews": "yes" if row["auto_renew"] else "no: renew by hand"})
        result["costs.domain_renewals"] = sorted(upcoming, key=lambda r: (r["expires"], r["domain"]))
        result["costs.domains_annual_cost"] = sum(
            (Decimal(str(r["renewal_price"])) for r in domains if r["renewal_price"] is not None), Decimal(0))
        result["costs.domains_unpriced"] = sum(1 for r in domains if r["renewal_price"] is None)

    costs, monthly = values.get("aws.monthly_cost_by_service"), values.get("finance.monthly")
    for needed, value in (("AWS costs", costs), ("ledger months", monthly)):
        if value is None or not is_available(value):
            reason = f"{needed} unavailable: {value.reason if value is not None else 'not gathered'}"
            return result | {n: Unavailable(n, reason) for n in SERVICE_METRICS}
    if not costs:
        reason = "Cost Explorer returned no months"
        return result | {n: Unavailable(n, reason) for n in SERVICE_METRICS}
    month = full_months_before(context.period_end, 1)[0]
    if not any(row["month"] == month for row in costs):
        reason = f"no Cost Explorer figures for {month}"
        plain = f"no AWS cost figures for {dt.date(int(month[:4]), int(month[5:7]), 1):%B %Y}"
        return result | {n: Unavailable(n, reason, plain=plain) for n in SERVICE_METRICS}
    revenue = next((row["revenue"] for row in monthly if row["month"] == month), Decimal(0))

    def share(cost: Decimal) -> float | None:
        return round(float(cost / revenue * 100), 2) if revenue > 0 else None

    rows = []
    for label, names in services.items():
        cost = sum((Decimal(str(r["amount"])) for r in costs if r["month"] == month and r["service"] in names),
                   Decimal(0))
        rows.append({"item": label, "month": month, "cost": cost, "revenue": revenue,
                     "percent_of_revenue": share(cost)})
    if is_available(result["costs.domains_annual_cost"]):
        cost = (result["costs.domains_annual_cost"] / 12).quantize(Decimal("0.01"))
        rows.append({"item": DOMAINS_LABEL, "month": month, "cost": cost, "revenue": revenue,
                     "percent_of_revenue": share(cost)})
    total = sum((r["cost"] for r in rows), Decimal(0))
    result["costs.report_services"] = rows
    result["costs.report_services_total"] = total
    result["costs.report_services_percent"] = (
        share(total) if revenue > 0 else
        Unavailable("costs.report_services_percent", f"no revenue in {month}", plain=f"no revenue in {month}"))
    return result


def derived_inputs(settings: Mapping[str, Any], context: SourceContext) -> list[str]:
    _settings(settings, context)
    return list(INPUTS)


REGISTRY.derive_from("cost_share", derived_inputs, cost_share)
