"""The CMO's plan, worked from several sources' metrics and defined here once: what one email to the list
could earn (the marketing source's list and case study, the ledger's average booking), each entity's local
SEO roadmap (channels, campaigns and the handoff notes' "Local SEO" items) and its 30/60/90-day milestones
(channels to bring live, OTA listings in their planned order, and the new customers the next three months'
revenue target asks for at the pace of the last three).

Each is a template helper (``REGISTRY.add_helper``): it takes an entity as a template sees it (``t``) and
returns data; the template lays it out. A metric the helper reads must be declared by the report (an
undeclared one is named in the error)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sources.registry import REGISTRY, is_available

LOCAL_SEO_HEADING = "Local SEO"
SEO_CHANNELS = ("Website", "Google Business profile")
MILESTONE_DAYS = (30, 60, 90)
PRIORITY_BY_STAGE = ("high", "medium", "low")


def _metric(tenant: Mapping[str, Any], name: str, helper: str) -> Any:
    namespace, short = name.split(".", 1)
    try:
        return tenant[namespace][short]
    except (KeyError, TypeError):
        raise ValueError(f"{helper}(): the report does not declare {name} (add it to the front matter's "
                         "metrics or optional_metrics)") from None


def _available(value: Any) -> bool:
    return value is not None and is_available(value)


def email_campaign(tenant: Mapping[str, Any]) -> dict[str, Any]:
    """What one email to the entity's list could earn. ``mode``: "event" (the case study's event: tickets
    at the low and high conversion, capped at the seats, ``event`` = marketing.case_study_range), "past" (the
    event is on or before the period end: nothing to pitch), "average" (no event: bookings at the low and high
    conversion valued at the average booking of the ledger's unit economics: bookings_low/high,
    revenue_low/high, as the event's are also given), or "missing" (``missing`` names the figure, ``value``
    is it, unavailable). Keys a mode does not use are None (``unit`` and ``assumed`` outside "average"). Also
    ``size``, ``new`` (subscribed this period) and ``observed``: finished email-list campaigns with their
    leads and the leads' share of today's list."""
    size = _metric(tenant, "marketing.email_list_size", "email_campaign")
    event = _metric(tenant, "marketing.case_study_range", "email_campaign")
    assumed = _metric(tenant, "marketing.case_study_assumptions", "email_campaign")
    unit = _metric(tenant, "finance.unit_economics", "email_campaign")
    campaigns = _metric(tenant, "marketing.campaigns", "email_campaign")
    study: dict[str, Any] = {"size": size, "new": _metric(tenant, "marketing.email_list_new_in_period", "email_campaign"),
                             "event": event, "observed": [], "unit": None, "assumed": None, "missing": None,
                             "value": None}
    if _available(size) and size and _available(campaigns):
        study["observed"] = [{"campaign": c["campaign"], "leads": c["leads"], "share": c["leads"] / size}
                             for c in campaigns if c["channel"] == "Email list" and c["status"] == "finished"]
    if _available(event):
        study["mode"] = "past" if event["event_past"] else "event"
        study["seats_short"] = max(0, event["wanted_high"] - event["capacity"])
        study["revenue_low"], study["revenue_high"] = event["revenue_low"], event["revenue_high"]
        return study
    for missing, value in (("the email list size", size), ("the average booking value", unit),
                           ("the conversion assumption", assumed)):
        if not _available(value):
            study.update(mode="missing", missing=missing, value=value)
            return study
    price = Decimal(str(unit["price_per_unit"]))
    study.update(mode="average", unit=unit, assumed=assumed)
    for end in ("low", "high"):
        bookings = Decimal(size) * Decimal(str(assumed[f"conversion_{end}"]))
        study[f"bookings_{end}"] = bookings
        study[f"revenue_{end}"] = bookings * price
    return study


def email_campaigns(tenants: list[Mapping[str, Any]], n: int = 3) -> dict[str, Any]:
    """The email-list case study of the ``n`` entities with the largest lists (those whose list size is
    available), largest first: each ``email_campaign`` with the entity's ``name``, parted into ``sized`` (a
    campaign is sized: modes "event" and "average"), ``past`` (the case study's event is past) and
    ``missing`` (a figure is missing); ``more``: entities with a smaller list left out; ``no_list``: the
    names of the entities whose list size is not available."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"email_campaigns(): n must be a whole number >= 0, got {n!r}")
    sizes = [(tenant, _metric(tenant, "marketing.email_list_size", "email_campaigns")) for tenant in tenants]
    with_lists = sorted((pair for pair in sizes if _available(pair[1])), key=lambda pair: -pair[1])  # stable
    studies: dict[str, Any] = {"sized": [], "past": [], "missing": [], "more": max(0, len(with_lists) - n),
                               "no_list": [tenant["name"] for tenant, size in sizes if not _available(size)]}
    for tenant, _ in with_lists[:n]:
        study = {"name": tenant["name"], **email_campaign(tenant)}
        studies["sized" if study["mode"] in ("event", "average") else study["mode"]].append(study)
    return studies


def local_seo_roadmaps(tenants: list[Mapping[str, Any]], n: int = 3) -> list[dict[str, Any]]:
    """The local SEO roadmap of the ``n`` entities needing the most attention that have "Local SEO" items in
    their handoff notes: {name, steps: rows of step, status, evidence}: the website and the Google Business
    profile as the channels file has them (``detail``: the evidence, "" for the notes' own items), the notes' done and open items, the other channels still
    planned or partly set up, and the local ads running on the Google Business profile."""
    roadmaps = []
    for tenant in sorted(tenants, key=lambda t: -t.get("attention", 0)):
        items = {kind: _metric(tenant, f"handoffs.{kind}_items", "local_seo_roadmaps") for kind in ("open", "done")}
        seo = {kind: [i for i in rows if i["heading"] == LOCAL_SEO_HEADING] if _available(rows) else []
               for kind, rows in items.items()}
        if not (seo["open"] or seo["done"]):
            continue
        channels = _metric(tenant, "marketing.channels", "local_seo_roadmaps")
        channels = channels if _available(channels) else []
        campaigns = _metric(tenant, "marketing.campaigns", "local_seo_roadmaps")
        status = {c["channel"]: c for c in channels}
        steps = [{"step": name, "status": status[name]["status"] if name in status else "not planned",
                  "evidence": status[name]["detail"] if name in status else ""} for name in SEO_CHANNELS]
        steps += [{"step": i["text"], "status": "done", "evidence": "handoff notes"} for i in seo["done"]]
        steps += [{"step": i["text"], "status": "open", "evidence": "handoff notes"} for i in seo["open"]]
        steps += [{"step": f"{c['channel']} listing", "status": c["status"], "evidence": c["detail"]}
                  for c in channels if c["channel"] not in SEO_CHANNELS and c["status"] in ("planned", "partial")]
        for c in campaigns if _available(campaigns) else []:
            if c["channel"] == "Google Business profile":
                cost = f"${c['cost_per_lead']:,.2f}" if c["cost_per_lead"] is not None else "—"
                steps.append({"step": f"Local ads: {c['campaign']}", "status": c["status"],
                              "evidence": f"{c['leads']:,} leads at {cost} each"})
        for step in steps:  # what to show after the status: the evidence, unless it is the notes themselves
            step["detail"] = "" if step["evidence"] == "handoff notes" else step["evidence"]
        roadmaps.append({"name": tenant["name"], "steps": steps})
        if len(roadmaps) == n:
            break
    return roadmaps


def _month(day: dt.date) -> str:
    return day.strftime("%Y-%m")


def _first_of(month: str) -> dt.date:
    return dt.date.fromisoformat(month + "-01")


def customer_pace(tenant: Mapping[str, Any], period_end: dt.date) -> dict[str, Any] | None:
    """The new customers the next three months' revenue target asks for, at the pace of the last three full
    months: their revenue brought the window's new customers, scaled to 90 days; the target needs that many
    times target / revenue, rounded up (at least 1). None when any of the six months lacks a target or
    figures, or nothing was earned. By calendar month: the three months after the month under way, and the
    three full months up to the period end."""
    targets = _metric(tenant, "finance.revenue_targets", "milestones")
    new = _metric(tenant, "customers.new_customers", "milestones")
    window = _metric(tenant, "customers.window_days", "milestones")
    if not (_available(targets) and _available(new) and _available(window)):
        return None
    last_full = period_end if (period_end + dt.timedelta(days=1)).month != period_end.month else \
        period_end - dt.timedelta(days=period_end.day)
    behind_months, cursor = [], last_full
    for _ in range(3):
        behind_months.insert(0, _month(cursor))
        cursor -= dt.timedelta(days=cursor.day)
    ahead_months, cursor = [], period_end
    for _ in range(3):
        cursor += dt.timedelta(days=32 - cursor.day)
        ahead_months.append(_month(cursor))
    ahead = [r for r in targets if r["month"] in ahead_months and r["target"]]
    behind = [r for r in targets if r["month"] in behind_months and r["actual"] is not None]
    if len(ahead) != 3 or len(behind) != 3:
        return None
    target_sum = sum(Decimal(str(r["target"])) for r in ahead)
    actual_sum = sum(Decimal(str(r["actual"])) for r in behind)
    if actual_sum <= 0:
        return None
    goal = max(1, math.ceil(Decimal(new) * 90 * target_sum / (actual_sum * window)))
    return {"target": target_sum, "actual": actual_sum, "new_customers": new, "window_days": window,
            "per_90_days": Decimal(new) * 90 / window, "goal": goal,
            "ahead_from": _first_of(ahead[0]["month"]), "ahead_to": _first_of(ahead[-1]["month"]),
            "behind_from": _first_of(behind[0]["month"]), "behind_to": _first_of(behind[-1]["month"])}


def milestones(tenant: Mapping[str, Any], period_end: dt.date, sent_on: dt.date | None = None) -> dict[str, Any]:
    """Three dated checkpoints, 30, 60 and 90 days after ``sent_on`` (the day the brief is sent; the period
    end without it); the pace is worked from the months around ``period_end``: {pace (customer_pace or None),
    has_ota, live_today, planned (channels planned: not n/a, plus OTAs of the listing order the channels
    file does not list), ota_planned, stages: [{days, due, channels, ota, customers, actions: [{text,
    priority}]}]}. By 30 days: a first campaign if none runs, the partly set-up channels and the next OTA
    listing; by 60: the missing channels and the second OTA listing; by 90: the rest of the OTA sequence
    and the pace's new customers. Counts never pass what is planned."""
    channels = _metric(tenant, "marketing.channels", "milestones")
    sequence = _metric(tenant, "marketing.ota_sequence", "milestones")
    live_today = _metric(tenant, "marketing.live_channel_count", "milestones")
    ota_live = _metric(tenant, "marketing.ota_listings", "milestones")
    running = _metric(tenant, "marketing.active_campaign_count", "milestones")
    cac = _metric(tenant, "customers.cac", "milestones")
    has_ota = any(c["ota"] for c in channels)
    ota_planned = [c for c in sequence if c["status"] != "n/a"]
    ota_todo = [c for c in ota_planned if c["status"] != "live"] if has_ota else []
    in_file = {c["channel"].lower() for c in channels}
    outside_file = sum(1 for c in ota_planned if c["channel"].lower() not in in_file)
    partial = [c for c in channels if not c["ota"] and c["status"] == "partial"]
    absent = [c for c in channels if not c["ota"] and c["status"] in ("missing", "planned")]
    actions: list[list[str]] = [[], [], []]
    if running == 0:
        actions[0].append("Start one campaign with a measured cost per lead")
    actions[0] += [f"Finish {c['channel']} ({c['detail']})" for c in partial]
    for index, c in enumerate(ota_todo):
        actions[min(index, 2)].append(f"List on {c['channel']}")
    actions[1] += [f"Get {c['channel']} live ({c['detail']})" for c in absent]
    pace = customer_pace(tenant, period_end)
    if pace:
        actions[2].append(f"Win {pace['goal']} new customer{'s' if pace['goal'] != 1 else ''} in 90 days"
                          + (f" at a CAC of at most ${Decimal(str(cac)):,.0f}" if _available(cac) else ""))
    channel_steps = (len(partial) + (1 if ota_todo else 0), len(absent) + (1 if len(ota_todo) > 1 else 0),
                     max(len(ota_todo) - 2, 0))
    planned = sum(1 for c in channels if c["status"] != "n/a") + (outside_file if has_ota else 0)
    reached_channels, reached_ota, stages = live_today, ota_live, []
    start = sent_on or period_end
    for index, days in enumerate(MILESTONE_DAYS):
        reached_channels = min(reached_channels + channel_steps[index], max(planned, live_today))
        reached_ota = min(reached_ota + ((1, 1, len(ota_todo))[index] if ota_todo else 0),
                          max(len(ota_planned), ota_live))
        stages.append({"days": days, "due": start + dt.timedelta(days=days), "channels": reached_channels,
                       "ota": reached_ota,
                       "customers": math.ceil(Decimal(pace["goal"]) * days / 90) if pace else None,
                       "actions": [{"text": text, "priority": PRIORITY_BY_STAGE[index]} for text in actions[index]]})
    return {"pace": pace, "has_ota": has_ota, "live_today": live_today, "planned": planned,
            "ota_planned": len(ota_planned), "stages": stages}


REGISTRY.add_helper("email_campaign", email_campaign)
REGISTRY.add_helper("email_campaigns", email_campaigns)
REGISTRY.add_helper("local_seo_roadmaps", local_seo_roadmaps)
REGISTRY.add_helper("milestones", milestones)
__all__ = ["email_campaign", "email_campaigns", "local_seo_roadmaps", "milestones", "customer_pace"]
