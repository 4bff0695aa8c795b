"""The CMO's plan helpers (sources/marketing_plan.py), each against figures worked by hand on a small
entity written out here."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from sources.marketing_plan import (
    customer_pace,
    email_campaign,
    email_campaigns,
    local_seo_roadmaps,
    milestones,
)
from sources.registry import REGISTRY, Unavailable

PERIOD_END = dt.date(2026, 11, 22)


def channel(name: str, status: str, ota: bool = False, detail: str = "") -> dict:
    return {"channel": name, "status": status, "detail": detail or f"{name} detail", "ota": ota}


def entity(**overrides) -> dict:
    """An entity as a template sees it: metrics by namespace."""
    channels = [channel("Website", "live"), channel("Google Business profile", "partial"),
                channel("Instagram", "missing"), channel("Sailo", "missing", ota=True),
                channel("GetMyBoat", "live", ota=True)]
    sequence = [{"step": 1, "channel": "Sailo", "status": "missing"},
                {"step": 2, "channel": "GetMyBoat", "status": "live"},
                {"step": 3, "channel": "Viator", "status": "missing"}]  # not in the channels file
    targets = [{"month": m, "target": t, "actual": a} for m, t, a in (
        ("2026-08", 4000, Decimal("3000")), ("2026-09", 4000, Decimal("3500")), ("2026-10", 4000, Decimal("3500")),
        ("2026-11", 4000, None), ("2026-12", 5000, None), ("2027-01", 5000, None), ("2027-02", 6000, None))]
    view = {"name": "Boats", "id": "boats", "attention": 10,
            "marketing": {"channels": channels, "ota_sequence": sequence, "live_channel_count": 2,
                          "ota_listings": 1, "active_campaign_count": 0, "campaigns": [],
                          "email_list_size": 1000, "email_list_new_in_period": 5,
                          "case_study_range": Unavailable("marketing.case_study_range", "no event"),
                          "case_study_assumptions": {"conversion_low": 0.01, "conversion_high": 0.02}},
            "finance": {"revenue_targets": targets,
                        "unit_economics": {"price_per_unit": Decimal("400"), "unit": "charter", "months": 3}},
            "customers": {"new_customers": 6, "window_days": 90, "cac": Decimal("61.4")},
            "handoffs": {"open_items": [{"heading": "Local SEO", "text": "Collect five reviews"}],
                         "done_items": [{"heading": "Local SEO", "text": "Claim the profile"},
                                        {"heading": "Sales", "text": "Price list"}]}}
    for path, value in overrides.items():
        namespace, key = path.split(".", 1)
        view[namespace][key] = value
    return view


def test_the_pace_scales_the_last_three_months_new_customers_to_the_next_three_months_target():
    pace = customer_pace(entity(), PERIOD_END)
    # Nov 22 is inside November: behind = Aug-Oct ($10,000), ahead = Dec-Feb ($16,000).
    # 6 new customers in 90 days brought $10,000; $16,000 needs 6 x 16,000 / 10,000 = 9.6 -> 10.
    assert (pace["target"], pace["actual"], pace["goal"]) == (16000, Decimal("10000"), 10)
    assert (pace["ahead_from"], pace["ahead_to"]) == (dt.date(2026, 12, 1), dt.date(2027, 2, 1))
    assert (pace["behind_from"], pace["behind_to"]) == (dt.date(2026, 8, 1), dt.date(2026, 10, 1))


def test_no_pace_when_a_month_of_the_six_has_no_target():
    targets = [r for r in entity()["finance"]["revenue_targets"] if r["month"] != "2027-01"]
    assert customer_pace(entity(**{"finance.revenue_targets": targets}), PERIOD_END) is None


def test_milestones_open_channels_and_listings_at_30_60_and_90_days_never_past_what_is_planned():
    plan = milestones(entity(), PERIOD_END)
    # Planned: 5 channels in the file + Viator (in the listing order, not in the file) = 6; live today 2.
    assert (plan["planned"], plan["live_today"], plan["ota_planned"]) == (6, 2, 3)
    first, second, third = plan["stages"]
    assert [a["text"] for a in first["actions"]] == [
        "Start one campaign with a measured cost per lead", "Finish Google Business profile (Google Business profile "
        "detail)", "List on Sailo"]
    assert [a["text"] for a in second["actions"]] == ["List on Viator", "Get Instagram live (Instagram detail)"]
    assert [a["text"] for a in third["actions"]] == ["Win 10 new customers in 90 days at a CAC of at most $61"]
    # 30 days: + the partial profile + Sailo = 4; 60: + Instagram + Viator = 6; 90: nothing left, still 6.
    assert [(s["channels"], s["ota"]) for s in plan["stages"]] == [(4, 2), (6, 3), (6, 3)]
    assert [s["customers"] for s in plan["stages"]] == [4, 7, 10]  # ceil(10 x 30/90), ceil(10 x 60/90), 10
    assert [s["due"] for s in plan["stages"]] == [dt.date(2026, 12, 22), dt.date(2027, 1, 21), dt.date(2027, 2, 20)]
    assert {a["priority"] for a in first["actions"]} == {"high"} and third["actions"][0]["priority"] == "low"


def test_an_email_to_the_list_without_an_event_is_valued_at_the_average_booking():
    study = email_campaign(entity())
    # 1,000 subscribers x 1% = 10 bookings x $400 = $4,000; x 2% = 20 x $400 = $8,000.
    assert study["mode"] == "average"
    assert (study["bookings_low"], study["revenue_low"], study["revenue_high"]) == (10, 4000, 8000)


def test_an_email_campaign_that_cannot_be_sized_names_the_missing_figure():
    missing = Unavailable("finance.unit_economics", "sources.ledger.unit_economics is not set")
    study = email_campaign(entity(**{"finance.unit_economics": missing}))
    assert (study["mode"], study["missing"], study["value"]) == ("missing", "the average booking value", missing)


def test_the_case_study_takes_the_largest_lists_and_parts_them_by_whether_a_campaign_is_sized():
    no_unit = Unavailable("finance.unit_economics", "sources.ledger.unit_economics is not set")
    no_list = Unavailable("marketing.email_list_size", "sources.marketing.subscribers is not set")
    past = {"event": "Regatta", "event_date": dt.date(2026, 11, 1), "event_past": True, "wanted_high": 5,
            "capacity": 10, "revenue_low": 0, "revenue_high": 0}
    tenants = [{**entity(**{"marketing.email_list_size": size}), "name": name} for name, size in
               (("Small", 200), ("Large", 3000), ("Middle", 1000), ("Tiny", 50))]
    tenants[2] = entity(**{"marketing.email_list_size": 1000, "finance.unit_economics": no_unit}) | {"name": "Middle"}
    tenants[3] = entity(**{"marketing.email_list_size": 50, "marketing.case_study_range": past}) | {"name": "Tiny"}
    tenants.append(entity(**{"marketing.email_list_size": no_list}) | {"name": "Unknown"})
    studies = email_campaigns(tenants, 3)
    # Largest lists first: Large (3,000), Middle (1,000), Small (200); Tiny (50) is the one left out.
    assert [s["name"] for s in studies["sized"]] == ["Large", "Small"]
    # 3,000 x 1% = 30 bookings x $400 = $12,000; x 2% = $24,000.
    assert (studies["sized"][0]["revenue_low"], studies["sized"][0]["revenue_high"]) == (12000, 24000)
    assert [(s["name"], s["missing"]) for s in studies["missing"]] == [("Middle", "the average booking value")]
    assert studies["past"] == [] and studies["more"] == 1 and studies["no_list"] == ["Unknown"]
    assert email_campaigns(tenants, 5)["past"][0]["name"] == "Tiny"
    with pytest.raises(ValueError, match="n must be a whole number"):
        email_campaigns(tenants, -1)


def test_the_local_seo_roadmap_lists_channels_then_done_and_open_notes_then_planned_listings():
    [roadmap] = local_seo_roadmaps([entity(), {**entity(), "name": "Quiet", "attention": 0,
                                               "handoffs": {"open_items": [], "done_items": []}}])
    assert roadmap["name"] == "Boats"
    assert [(s["step"], s["status"]) for s in roadmap["steps"]] == [
        ("Website", "live"), ("Google Business profile", "partial"), ("Claim the profile", "done"),
        ("Collect five reviews", "open")]
    # What a brief shows after each status: the channels file's detail; nothing for the notes' own items.
    assert [s["detail"] for s in roadmap["steps"]] == ["Website detail", "Google Business profile detail", "", ""]


def test_a_helper_reading_an_undeclared_metric_names_it():
    view = entity()
    del view["customers"]
    with pytest.raises(ValueError, match=r"milestones\(\): the report does not declare customers.cac"):
        milestones(view, PERIOD_END)


def test_the_helpers_are_registered_for_templates():
    assert {"email_campaign", "email_campaigns", "local_seo_roadmaps", "milestones"} <= set(REGISTRY.helpers)
