"""Marketing source: channels, OTA listings, the email list and campaigns from small fixture files."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from flows.core.errors import SourceError
from sources.catalogue import SourceContext, Unavailable
from sources.marketing import gather_marketing

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "business"


def context() -> SourceContext:
    return SourceContext("acme", "Acme", dt.date(2026, 9, 1), dt.date(2026, 9, 30), FIXTURES)


def test_channels_give_the_visibility_row_and_count_only_live_ota_listings():
    figures = gather_marketing({"channels": "channels.csv"}, context())
    assert figures["marketing.live_channel_count"] == 3  # Website, Viator, Instagram
    assert figures["marketing.visibility"] == {"Website": "live", "Sailo": "missing", "Viator": "live",
                                               "GetMyBoat": "partial", "Instagram": "live"}
    # Viator is live; GetMyBoat is only a draft and Sailo is missing.
    assert figures["marketing.ota_listings"] == 1
    assert [c["channel"] for c in figures["marketing.channels"] if c["ota"]] == ["Sailo", "Viator", "GetMyBoat"]
    # The listing order (default Sailo, GetMyBoat, Viator) in words; Sailo is the next to list.
    assert figures["marketing.ota_order"] == "1. Sailo (missing — next), 2. GetMyBoat (partial), 3. Viator (live)"


def test_ota_channels_can_be_configured():
    figures = gather_marketing({"channels": "channels.csv", "ota_channels": ["Instagram"]}, context())
    assert figures["marketing.ota_listings"] == 1
    assert [c["channel"] for c in figures["marketing.channels"] if c["ota"]] == ["Instagram"]
    assert figures["marketing.ota_order"] == "1. Instagram (live)"
    # A channels file without any OTA channel plans no listing: no order to show.
    assert gather_marketing({"channels": "channels.csv", "ota_channels": ["Airbnb"]},
                            context())["marketing.ota_order"] == ""


def test_email_list_counts_distinct_addresses_subscribed_at_the_period_end():
    figures = gather_marketing({"subscribers": "subscribers.csv"}, context())
    # a and b (B@Example.com is b again); c unsubscribed; d joins after 2026-09-30; e's last row is an
    # unsubscribe; f bounced.
    assert figures["marketing.email_list_size"] == 2
    # b re-subscribed on 2026-09-12, inside September.
    assert figures["marketing.email_list_new_in_period"] == 1


def test_campaign_status_is_taken_at_the_period_end_with_cost_per_lead():
    figures = gather_marketing({"campaigns": "campaigns.csv"}, context())
    rows = {c["campaign"]: c for c in figures["marketing.campaigns"]}
    assert (rows["Spring"]["status"], rows["Spring"]["cost_per_lead"]) == ("finished", Decimal("25.00"))
    assert (rows["Fall"]["status"], rows["Fall"]["cost_per_lead"]) == ("running", Decimal("125.00"))
    assert (rows["Winter"]["status"], rows["Winter"]["cost_per_lead"]) == ("planned", None)
    assert figures["marketing.active_campaign_count"] == 1


def test_each_unset_or_missing_file_costs_only_its_own_metrics():
    figures = gather_marketing({"channels": "channels.csv", "subscribers": "gone.csv"}, context())
    assert figures["marketing.ota_listings"] == 1
    assert isinstance(figures["marketing.email_list_size"], Unavailable)
    assert str(FIXTURES / "gone.csv") in figures["marketing.email_list_size"].reason
    assert "sources.marketing.campaigns is not set" in figures["marketing.campaigns"].reason


def test_bad_subscriber_rows_fail_naming_the_cell_or_are_skipped_and_listed():
    with pytest.raises(SourceError, match=r"subscribers_bad.csv:3: column 'email': not an email address "
                                          r"\(value 'not-an-address'\)"):
        gather_marketing({"subscribers": "subscribers_bad.csv"}, context())
    figures = gather_marketing({"subscribers": "subscribers_bad.csv", "on_bad_row": "skip"}, context())
    assert figures["marketing.email_list_size"] == 1
    assert any("subscribers_bad.csv:4: column 'status'" in p and "'pending'" in p
               for p in figures["marketing.problems"])


def test_an_unknown_channel_status_names_the_cell(tmp_path):
    (tmp_path / "channels.csv").write_text("channel,status,detail\nViator,sort of,\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"channels.csv:2: column 'status'.*\(value 'sort of'\)"):
        gather_marketing({"channels": "channels.csv"},
                         SourceContext("acme", "Acme", dt.date(2026, 9, 1), dt.date(2026, 9, 30), tmp_path))
