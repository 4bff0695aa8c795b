"""Marketing source: the OTA listing sequence and the case-study assumptions, both from settings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from sources.catalogue import SourceContext, Unavailable
from sources.marketing import gather_marketing

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "business"


def context() -> SourceContext:
    return SourceContext("acme", "Acme", dt.date(2026, 9, 1), dt.date(2026, 9, 30), FIXTURES)


def test_the_ota_sequence_follows_the_configured_order_not_the_files():
    # channels.csv lists Sailo (missing), Viator (live), GetMyBoat (partial), in that order.
    figures = gather_marketing({"channels": "channels.csv", "ota_channels": ["Viator", "GetMyBoat", "Sailo"]},
                               context())
    assert [(s["step"], s["channel"], s["status"]) for s in figures["marketing.ota_sequence"]] == [
        (1, "Viator", "live"), (2, "GetMyBoat", "partial"), (3, "Sailo", "missing")]


def test_an_ota_channel_absent_from_the_channels_file_is_missing_and_says_why():
    figures = gather_marketing({"channels": "channels.csv", "ota_channels": ["Viator", "Boatsetter"]}, context())
    assert figures["marketing.ota_sequence"][1] == {"step": 2, "channel": "Boatsetter", "status": "missing",
                                                    "detail": "not in the channels file", "next": True,
                                                    "state": "missing — next"}


def test_the_default_sequence_is_sailo_getmyboat_viator():
    figures = gather_marketing({"channels": "channels.csv"}, context())
    assert [s["channel"] for s in figures["marketing.ota_sequence"]] == ["Sailo", "GetMyBoat", "Viator"]


def test_case_study_assumptions_come_from_settings():
    figures = gather_marketing({"case_study": {"conversion_low": 0.01, "conversion_high": 0.03}}, context())
    assert figures["marketing.case_study_assumptions"] == {"conversion_low": 0.01, "conversion_high": 0.03}


def test_case_study_assumptions_are_unavailable_when_not_set():
    value = gather_marketing({}, context())["marketing.case_study_assumptions"]
    assert isinstance(value, Unavailable) and "sources.marketing.case_study is not set" in value.reason


@pytest.mark.parametrize(("study", "message"), [
    ({"conversion_low": 2, "conversion_high": 3}, "sources.marketing.case_study.conversion_low must be a fraction"),
    ({"conversion_low": 0.01, "conversion_high": "2%"}, "case_study.conversion_high must be a fraction above 0 and at most 1 (0.005 = 0.5%), got '2%'"),
    ({"conversion_low": 0.01}, "case_study.conversion_high must be a fraction above 0 and at most 1 (0.005 = 0.5%), got None"),
    ({"conversion_low": 0.05, "conversion_high": 0.01}, "conversion_low is above conversion_high"),
    ("0.5%", "sources.marketing.case_study must be a mapping"),
])
def test_bad_case_study_assumptions_are_unavailable_naming_the_key(study, message):
    value = gather_marketing({"case_study": study}, context())["marketing.case_study_assumptions"]
    assert isinstance(value, Unavailable) and message in value.reason


def test_the_case_study_event_turns_the_list_into_tickets_capped_at_capacity_times_the_price():
    study = {"conversion_low": 0.01, "conversion_high": 0.05, "event": "Harbor concert", "event_date": "2026-10-10",
             "ticket_price": 40, "capacity": 30}
    figures = gather_marketing({"case_study": study, "subscribers": "subscribers.csv"}, context())
    size = figures["marketing.email_list_size"]
    event = figures["marketing.case_study_range"]
    # By hand: whole tickets at 1% and 5% of the list, at most 30 seats, at $40 each.
    low, high = size // 100, min(size * 5 // 100, 30)
    assert (event["tickets_low"], event["tickets_high"]) == (low, high)
    assert (event["revenue_low"], event["revenue_high"]) == (Decimal(40 * low), Decimal(40 * high))
    assert event["event_date"] == dt.date(2026, 10, 10) and event["list_size"] == size


def test_a_case_study_of_3676_at_half_and_two_percent_sells_18_and_24_of_24_seats():
    from sources.marketing import case_study_range

    study = {"conversion_low": 0.005, "conversion_high": 0.02, "event": "Fireworks cruise", "ticket_price": 250,
             "capacity": 24}
    event = case_study_range(study | {"ticket_price": Decimal(250)}, 3676)
    # 3,676 x 0.5% = 18.38 -> 18 tickets; 3,676 x 2% = 73.52 -> 73 wanted, 24 seats.
    assert (event["wanted_low"], event["wanted_high"], event["tickets_low"], event["tickets_high"]) == (18, 73, 18, 24)
    assert (event["revenue_low"], event["revenue_high"]) == (Decimal(4500), Decimal(6000))
    assert (event["filled_low_percent"], event["filled_high_percent"]) == (75.0, 100.0)


@pytest.mark.parametrize(("extra", "message"), [
    ({"event": "Concert", "ticket_price": 40}, "has an event but no capacity"),
    ({"event": "Concert", "ticket_price": 0, "capacity": 10}, "case_study.ticket_price must be an amount above 0"),
    ({"event": "Concert", "ticket_price": 40, "capacity": 2.5}, "case_study.capacity must be a whole number of seats"),
    ({"event": "Concert", "ticket_price": 40, "capacity": 10, "event_date": "soon"}, "case_study.event_date must be a date"),
])
def test_a_bad_case_study_event_is_unavailable_naming_the_key(extra, message):
    value = gather_marketing({"case_study": {"conversion_low": 0.01, "conversion_high": 0.02, **extra}},
                             context())["marketing.case_study_assumptions"]
    assert isinstance(value, Unavailable) and message in value.reason


def test_without_an_event_the_case_study_range_is_unavailable_and_the_assumptions_stay():
    figures = gather_marketing({"case_study": {"conversion_low": 0.01, "conversion_high": 0.02}}, context())
    assert isinstance(figures["marketing.case_study_range"], Unavailable)
    assert figures["marketing.case_study_assumptions"] == {"conversion_low": 0.01, "conversion_high": 0.02}


@pytest.mark.parametrize(("event_date", "past"), [("2026-09-12", True), ("2026-09-30", True), ("2026-10-10", False)])
def test_a_case_study_event_on_or_before_the_period_end_is_marked_past(event_date, past):
    # The period ends Sep 30, 2026: an event that day or earlier is over by the time the report is read.
    study = {"conversion_low": 0.01, "conversion_high": 0.05, "event": "Harbor concert", "event_date": event_date,
             "ticket_price": 40, "capacity": 30}
    figures = gather_marketing({"case_study": study, "subscribers": "subscribers.csv"}, context())
    assert figures["marketing.case_study_range"]["event_past"] is past
