"""Customers source: funnel, CAC and churn over a trailing window, worked by hand from a nine-row file."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from flows.core.errors import SourceError
from sources.catalogue import REGISTRY, SourceContext, Unavailable
from sources.customers import gather_customers

HEADER = "customer_id,signup_date,acquisition_channel,acquisition_cost,first_purchase_date,churn_date,monthly_value\n"
# Period Sep 24-30, 2026 with a 30-day window: Sep 1-30 (the day before it: Aug 31).
ROWS = """\
A1,2026-07-10,Referral,0,2026-07-15,,100
A2,2026-07-20,Ads,50,2026-08-01,2026-09-10,200
A3,2026-08-05,Ads,50,,,
A4,2026-09-02,Ads,40,2026-09-05,,150
A5,2026-09-03,Ads,40,,,
A6,2026-09-10,Referral,0,2026-09-12,2026-09-25,90
A7,2026-09-15,Flyers,25,2026-10-02,,
A8,2026-10-03,Ads,40,,,
A9,2026-06-01,Flyers,30,2026-06-03,2026-08-20,80
"""


def context(tmp_path) -> SourceContext:
    return SourceContext("acme", "Acme", dt.date(2026, 9, 24), dt.date(2026, 9, 30), tmp_path)


def gather(tmp_path, rows: str = ROWS, **settings):
    (tmp_path / "customers.csv").write_text(HEADER + rows, encoding="utf-8")
    return gather_customers({"path": "customers.csv", "window_days": 30, **settings}, context(tmp_path))


def test_the_funnel_follows_the_windows_signups_to_customers_and_still_customers(tmp_path):
    figures = gather(tmp_path)
    assert figures["customers.window_start"] == dt.date(2026, 9, 1)
    # Signed up Sep 1-30: A4, A5, A6, A7 (A8 signed up after the period end). Bought by Sep 30: A4, A6
    # (A7 buys on Oct 2). Still customers on Sep 30: A4 (A6 left on Sep 25).
    assert [(s["stage"], s["count"], s["percent_of_previous"]) for s in figures["customers.funnel"]] == [
        ("Signed up", 4, None), ("Became customers", 2, 50.0), ("Still customers", 1, 50.0)]
    assert figures["customers.signups"] == 4 and figures["customers.signups_converted"] == 2
    assert figures["customers.signups_retained"] == 1
    assert figures["customers.conversion_percent"] == 50.0


def test_cac_is_the_cohorts_spend_over_the_customers_it_became_overall_and_per_channel(tmp_path):
    figures = gather(tmp_path)
    # Spend on A4, A5, A6, A7: 40 + 40 + 0 + 25 = 105, for 2 customers.
    assert figures["customers.acquisition_spend"] == Decimal("105")
    assert figures["customers.cac"] == Decimal("52.50")
    assert figures["customers.cac_by_channel"] == [
        {"channel": "Ads", "signups": 2, "customers": 1, "spend": Decimal("80"), "cac": Decimal("80.00")},
        {"channel": "Flyers", "signups": 1, "customers": 0, "spend": Decimal("25"), "cac": None},
        {"channel": "Referral", "signups": 1, "customers": 1, "spend": Decimal("0"), "cac": Decimal("0.00")}]


def test_churn_is_the_share_of_the_starting_customers_lost_in_the_window(tmp_path):
    figures = gather(tmp_path)
    # Customers on Aug 31: A1 and A2 (A9 left on Aug 20). A2 left on Sep 10: 1 of 2.
    assert figures["customers.active_at_start"] == 2
    assert figures["customers.churn_rate"] == 50.0
    # Lost in the window: A2 and A6; new in the window: A4 and A6; customers on Sep 30: A1 and A4.
    assert figures["customers.churned"] == 2 and figures["customers.new_customers"] == 2
    assert figures["customers.active_customers"] == 2 and figures["customers.net_new_customers"] == 0


def test_cac_payback_divides_cac_by_the_current_customers_average_monthly_value(tmp_path):
    figures = gather(tmp_path)
    assert figures["customers.average_monthly_value"] == Decimal("125.00")  # A1 100, A4 150
    assert figures["customers.cac_payback_months"] == 0.4  # 52.50 / 125


def test_no_customer_from_the_window_makes_cac_unavailable_with_a_plain_reason(tmp_path):
    figures = gather(tmp_path, "A5,2026-09-03,Ads,40,,,\n")
    assert isinstance(figures["customers.cac"], Unavailable)
    assert figures["customers.cac"].plain == "no sign-up in the last 30 days has become a customer yet"
    assert isinstance(figures["customers.churn_rate"], Unavailable)  # nobody was a customer on Aug 31


@pytest.mark.parametrize(("row", "message"), [
    ("B1,2026-13-01,Ads,10,,,", "customers.csv:2: column 'signup_date': not a date in YYYY-MM-DD form (value '2026-13-01')"),
    ("B1,2026-09-01,Ads,-5,,,", "customers.csv:2: column 'acquisition_cost': a cost cannot be negative (value '-5')"),
    ("B1,2026-09-01,Ads,5,,2026-09-20,", "customers.csv:2: column 'churn_date': a churn date needs a first_purchase_date"),
    ("B1,2026-09-05,Ads,5,2026-09-01,,", "customers.csv:2: column 'first_purchase_date': is before the signup_date"),
])
def test_a_bad_row_fails_naming_file_line_column_and_value(tmp_path, row, message):
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        gather(tmp_path, row + "\n")


def test_under_skip_a_bad_row_is_left_out_and_listed_and_a_duplicate_id_too(tmp_path):
    figures = gather(tmp_path, ROWS + "A4,2026-09-20,Ads,40,,,\nB2,someday,Ads,0,,,\n", on_bad_row="skip")
    assert figures["customers.signups"] == 4  # the same as without the two bad rows
    assert figures["customers.problems"] == [
        "customers.csv:11: column 'customer_id': appears twice (value 'A4')",
        "customers.csv:12: column 'signup_date': not a date in YYYY-MM-DD form (value 'someday')"]


def test_the_window_must_be_a_whole_number_of_days(tmp_path):
    with pytest.raises(SourceError, match="sources.customers.window_days must be a whole number"):
        gather(tmp_path, window_days="90")


def test_every_customer_metric_is_catalogued_with_a_description():
    names = [n for n, spec in REGISTRY.metrics.items() if spec.source == "customers"]
    assert {"customers.cac", "customers.churn_rate", "customers.funnel", "customers.cac_by_channel"} <= set(names)
    assert all(REGISTRY.metrics[n].description for n in names)
