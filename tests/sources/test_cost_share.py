"""cost_share: the reports' AWS services and domains against revenue, from values worked by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from flows.core.errors import SourceError
from sources.catalogue import REGISTRY, SourceContext, Unavailable
from sources.cost_share import cost_share, derived_inputs

CONTEXT = SourceContext("acme", "Acme", dt.date(2026, 11, 16), dt.date(2026, 11, 22), Path("."))
COSTS = [
    {"month": "2026-09", "service": "AWS Lambda", "amount": 9.99},  # an earlier month: not compared
    {"month": "2026-10", "service": "AWS Lambda", "amount": 2.40},
    {"month": "2026-10", "service": "Amazon Simple Email Service", "amount": 0.35},
    {"month": "2026-10", "service": "AWS Data Transfer", "amount": 0.25},
    {"month": "2026-10", "service": "Amazon CloudFront", "amount": 3.00},  # not one of the reports' services
]
DOMAINS = [
    {"domain": "a.example", "expires": "2026-12-01", "auto_renew": False, "renewal_price": 14.0},
    {"domain": "b.example", "expires": "2027-02-20", "auto_renew": True, "renewal_price": 10.0},  # day 90
    {"domain": "c.example", "expires": "2027-02-21", "auto_renew": True, "renewal_price": 12.0},  # day 91
    {"domain": "d.example", "expires": "2027-06-01", "auto_renew": True, "renewal_price": None},
]
MONTHLY = [{"month": "2026-10", "revenue": Decimal("2000"), "expenses": Decimal("2500"), "net": Decimal("-500"),
            "draws": Decimal("0")}]


def values(**changes):
    return {"aws.monthly_cost_by_service": COSTS, "aws.domain_registrations": DOMAINS, "finance.monthly": MONTHLY,
            **changes}


def test_each_service_and_the_domains_as_a_share_of_the_months_revenue():
    result = cost_share({}, values(), CONTEXT)
    rows = {r["item"]: r for r in result["costs.report_services"]}
    assert rows["Lambda execution"]["cost"] == Decimal("2.40") and rows["Lambda execution"]["month"] == "2026-10"
    assert rows["Email sending (SES)"]["percent_of_revenue"] == 0.02  # 0.35 / 2000 = 0.0175% -> 0.02
    # Domains: (14 + 10 + 12) a year, the unpriced one left out, / 12 = 3.00 a month.
    assert result["costs.domains_annual_cost"] == Decimal("36")
    assert rows["Domain registrations"]["cost"] == Decimal("3.00")
    # 2.40 + 0.35 + 0.25 + 3.00 = 6.00 of 2000 = 0.3%
    assert result["costs.report_services_percent"] == 0.3


def test_renewals_within_the_window_soonest_first_with_days_left():
    result = cost_share({}, values(), CONTEXT)
    assert [(r["domain"], r["days_left"]) for r in result["costs.domain_renewals"]] == [
        ("a.example", 9), ("b.example", 90)]
    wider = cost_share({"renewal_window_days": 91}, values(), CONTEXT)
    assert [r["domain"] for r in wider["costs.domain_renewals"]] == ["a.example", "b.example", "c.example"]


def test_services_can_be_regrouped_in_the_settings():
    result = cost_share({"services": {"Delivery": ["Amazon CloudFront", "AWS Data Transfer"]}}, values(), CONTEXT)
    assert [(r["item"], r["cost"]) for r in result["costs.report_services"]] == [
        ("Delivery", Decimal("3.25")), ("Domain registrations", Decimal("3.00"))]


def test_no_revenue_gives_no_share_rather_than_a_division_by_zero():
    result = cost_share({}, values(**{"finance.monthly": []}), CONTEXT)
    assert isinstance(result["costs.report_services_percent"], Unavailable)
    assert all(r["percent_of_revenue"] is None for r in result["costs.report_services"])


def test_unavailable_inputs_make_only_their_figures_unavailable():
    result = cost_share({}, values(**{"aws.domain_registrations": Unavailable("aws.domain_registrations",
                                                                             "AccessDenied")}), CONTEXT)
    assert "AccessDenied" in result["costs.domain_renewals"].reason
    assert [r["item"] for r in result["costs.report_services"]] == [
        "Email sending (SES)", "Lambda execution", "Data transfer"]


def test_bad_settings_name_the_key():
    with pytest.raises(SourceError, match="sources.cost_share.renewal_window_days"):
        derived_inputs({"renewal_window_days": 0}, CONTEXT)
    with pytest.raises(SourceError, match="sources.cost_share.services"):
        derived_inputs({"services": ["AWS Lambda"]}, CONTEXT)


def test_it_is_a_derived_source_reading_the_aws_and_ledger_metrics():
    assert REGISTRY.is_derived("cost_share")
    assert set(derived_inputs({}, CONTEXT)) == {"aws.monthly_cost_by_service", "aws.domain_registrations",
                                                "finance.monthly"}


def test_unpriced_domains_are_counted_so_the_report_can_say_they_are_left_out():
    result = cost_share({}, values(), CONTEXT)
    assert result["costs.domains_unpriced"] == 1  # d.example has no renewal price
    assert result["costs.renewal_window_days"] == 90
    assert cost_share({"renewal_window_days": 30}, values(), CONTEXT)["costs.renewal_window_days"] == 30


def test_an_expired_domain_is_marked_expired_and_listed_first():
    lapsed = {"domain": "z.example", "expires": "2026-11-20", "auto_renew": False, "renewal_price": 14.0}
    result = cost_share({}, values(**{"aws.domain_registrations": DOMAINS + [lapsed]}), CONTEXT)
    # Nov 20 is 2 days before the period end (Nov 22).
    assert [(r["domain"], r["days_left"], r["expired"]) for r in result["costs.domain_renewals"]] == [
        ("z.example", -2, True), ("a.example", 9, False), ("b.example", 90, False)]


def test_a_last_full_month_without_cost_explorer_rows_is_unavailable_not_an_older_month():
    # Period ending Dec 6: the last full month is November; COSTS stop at October.
    december = SourceContext("acme", "Acme", dt.date(2026, 11, 30), dt.date(2026, 12, 6), Path("."))
    result = cost_share({}, values(), december)
    for name in ("costs.report_services", "costs.report_services_percent"):
        assert isinstance(result[name], Unavailable) and "no Cost Explorer figures for 2026-11" in result[name].reason


def test_an_empty_services_setting_is_rejected_naming_the_key():
    with pytest.raises(SourceError, match=r"sources.cost_share.services is empty"):
        derived_inputs({"services": {}}, CONTEXT)
