"""Marketing source: the OTA listing sequence and the case-study assumptions, both from settings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sources import SourceContext, Unavailable
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
                                                    "detail": "not in the channels file"}


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
