"""Marketing source: channel visibility, the email list and campaigns, per tenant.

Settings (under ``sources.marketing``), each file optional; a missing or unset one makes only its
own metrics unavailable:
    channels      CSV: channel, status, detail (status: live, partial, missing, planned, n/a)
    ota_channels  which channels are online travel agency listings, in the order to list on them
                  (default: Sailo, GetMyBoat, Viator)
    case_study    assumptions for the email campaign case study: {conversion_low, conversion_high},
                  each a fraction of the list that books (0.005 = 0.5%); optionally the booking the
                  campaign is for: event (its name), event_date (YYYY-MM-DD), ticket_price, capacity
                  (seats), which give marketing.case_study_range
    subscribers   CSV: email, status, subscribed_on (one row per address or per change; the last row
                  for an address wins, addresses compare case-insensitively)
    campaigns     CSV: campaign, channel, start, end, spend, leads
    on_bad_row    fail (default) | skip
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from sources.registry import REGISTRY, MetricSpec, SourceContext, Unavailable
from sources.tabular import BadRowPolicy, MissingFile, RowProblem, parse_amount, parse_date, read_rows

CHANNEL_STATUSES = ("live", "partial", "missing", "planned", "n/a")
DEFAULT_OTA_CHANNELS = ("Sailo", "GetMyBoat", "Viator")
SUBSCRIBER_STATUSES = ("subscribed", "unsubscribed", "bounced", "cleaned")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

METRICS = [
    MetricSpec("marketing.channels", "Each marketing channel with its status and detail "
               "(rows: channel, status, detail, ota).", "table"),
    MetricSpec("marketing.live_channel_count", "Number of channels whose status is live.", "number", better="up",
               total=True),
    MetricSpec("marketing.visibility", "Channel name -> status, for a channel x tenant matrix.", "mapping"),
    MetricSpec("marketing.ota_listings", "Number of live online travel agency listings "
               "(Sailo, GetMyBoat, Viator unless ota_channels says otherwise).", "number", better="up", total=True),
    MetricSpec("marketing.email_list_size", "Distinct addresses subscribed at the period end.", "number"),
    MetricSpec("marketing.email_list_new_in_period", "Addresses that subscribed during the period and are "
               "still subscribed.", "number"),
    MetricSpec("marketing.campaigns", "Campaigns with their status at the period end "
               "(rows: campaign, channel, start, end, status, spend, leads, cost_per_lead).", "table"),
    MetricSpec("marketing.active_campaign_count", "Campaigns running at the period end.", "number", better="up",
               total=True),
    MetricSpec("marketing.problems", "Marketing rows left out under on_bad_row: skip.", "list"),
    MetricSpec("marketing.ota_sequence", "The OTA channels in the order of ota_channels, each with its status "
               "from the channels file, 'missing' when the file does not list it (rows: step, channel, status, "
               "detail, next: the first planned listing not live yet, state: the status with \"next\" added to "
               "that one).", "table"),
    MetricSpec("marketing.channel_presence", "Each channel of the channels file as counts for a portfolio table "
               "(rows: channel, live, partial, not_yet: 1 or 0 each; n/a channels left out): totals_by adds "
               "them up across entities.", "table"),
    MetricSpec("marketing.not_live", "The channels not live yet with their status, in words (\"Sailo (planned), "
               "Viator (missing)\"); \"—\" when every channel is live.", "text"),
    MetricSpec("marketing.ota_order", "The OTA listing order in words, each step with its state (\"1. Sailo "
               "(live), 2. Viator (planned — next)\"); \"\" when the channels file lists no OTA channel (none is planned).",
               "text"),
    MetricSpec("marketing.case_study_assumptions", "Assumed conversion of the email list into bookings, from "
               "sources.marketing.case_study (keys: conversion_low, conversion_high, as fractions; with an event "
               "also event, event_date, ticket_price, capacity).", "mapping"),
    MetricSpec("marketing.case_study_range", "What the email list could book for the case study's event: list size "
               "x conversion low/high, rounded down to whole tickets, capped at the capacity, x the ticket price "
               "(keys: event, event_date, ticket_price, capacity, list_size, conversion_low, conversion_high, "
               "wanted_low, wanted_high, tickets_low, tickets_high, revenue_low, revenue_high, filled_low_percent, "
               "filled_high_percent, event_past: the event is on or before the period end, so it is not pitched).",
               "mapping"),
]

CHANNEL_METRICS = ("marketing.channels", "marketing.live_channel_count", "marketing.visibility",
                   "marketing.ota_listings", "marketing.ota_sequence", "marketing.channel_presence",
                   "marketing.not_live", "marketing.ota_order")
SUBSCRIBER_METRICS = ("marketing.email_list_size", "marketing.email_list_new_in_period")
CAMPAIGN_METRICS = ("marketing.campaigns", "marketing.active_campaign_count")


@REGISTRY.register("marketing", "Marketing channels, email list and campaigns, kept as CSV.", METRICS)
def gather_marketing(settings: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    policy = BadRowPolicy(settings, "marketing", context.tenant_id, context.base_dir)
    result: dict[str, Any] = {}
    for key, names, reader in (("channels", CHANNEL_METRICS, read_channels),
                               ("subscribers", SUBSCRIBER_METRICS, read_subscribers),
                               ("campaigns", CAMPAIGN_METRICS, read_campaigns)):
        result.update(_from_file(settings, context, policy, key, names, reader))
    result["marketing.problems"] = policy.findings
    result["marketing.case_study_assumptions"] = case_study_assumptions(settings)
    result["marketing.case_study_range"] = case_study_range(result["marketing.case_study_assumptions"],
                                                            result["marketing.email_list_size"], context.period_end)
    return result


def case_study_assumptions(settings: Mapping[str, Any]) -> Any:
    name = "marketing.case_study_assumptions"
    if "case_study" not in settings:
        return Unavailable(name, "sources.marketing.case_study is not set")
    study = settings["case_study"]
    if not isinstance(study, Mapping):
        return Unavailable(name, f"sources.marketing.case_study must be a mapping, got {study!r}")
    values = {}
    for key in ("conversion_low", "conversion_high"):
        value = study.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            return Unavailable(name, f"sources.marketing.case_study.{key} must be a fraction above 0 and at "
                                     f"most 1 (0.005 = 0.5%), got {value!r}")
        values[key] = float(value)
    if values["conversion_low"] > values["conversion_high"]:
        return Unavailable(name, "sources.marketing.case_study.conversion_low is above conversion_high")
    event_keys = ("event", "ticket_price", "capacity")
    if any(key in study for key in (*event_keys, "event_date")):
        missing = [key for key in event_keys if key not in study]
        if missing:
            return Unavailable(name, f"sources.marketing.case_study has an event but no {', '.join(missing)} "
                                     "(event, ticket_price and capacity go together)")
        event, price, capacity = study["event"], study["ticket_price"], study["capacity"]
        if not isinstance(event, str) or not event.strip():
            return Unavailable(name, f"sources.marketing.case_study.event must be the event's name, got {event!r}")
        if isinstance(price, bool) or not isinstance(price, int | float) or price <= 0:
            return Unavailable(name, f"sources.marketing.case_study.ticket_price must be an amount above 0, "
                                     f"got {price!r}")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
            return Unavailable(name, f"sources.marketing.case_study.capacity must be a whole number of seats "
                                     f"above 0, got {capacity!r}")
        event_date = study.get("event_date")
        if event_date is not None and not isinstance(event_date, dt.date):
            try:
                event_date = parse_date(str(event_date))
            except ValueError:
                return Unavailable(name, f"sources.marketing.case_study.event_date must be a date in YYYY-MM-DD "
                                         f"form, got {event_date!r}")
        values.update(event=event.strip(), event_date=event_date, ticket_price=Decimal(str(price)),
                      capacity=capacity)
    return values


def case_study_range(assumed: Any, list_size: Any, period_end: dt.date | None = None) -> Any:
    """The case study's event as the booking it is: tickets the list could buy at the low and high conversion
    (whole tickets, rounded down), capped at the capacity, times the ticket price. ``event_past``: the event
    is dated on or before the period end, so the report is read after it: nothing left to sell."""
    name = "marketing.case_study_range"
    if isinstance(assumed, Unavailable):
        return Unavailable(name, assumed.reason, plain=assumed.plain)
    if "event" not in assumed:
        return Unavailable(name, "sources.marketing.case_study names no event (event, ticket_price, capacity)")
    if isinstance(list_size, Unavailable):
        return Unavailable(name, list_size.reason, plain=list_size.plain)
    result: dict[str, Any] = {key: assumed.get(key) for key in ("event", "event_date", "ticket_price", "capacity",
                                                           "conversion_low", "conversion_high")}
    result["list_size"] = list_size
    result["event_past"] = bool(period_end and result["event_date"] and result["event_date"] <= period_end)
    for end in ("low", "high"):
        # Decimal keeps 3,676 x 0.005 = 18.38 exact; float could land a hair under a whole ticket.
        wanted = int(Decimal(list_size) * Decimal(str(assumed[f"conversion_{end}"])))
        tickets = min(wanted, assumed["capacity"])
        result[f"wanted_{end}"] = wanted
        result[f"tickets_{end}"] = tickets
        result[f"revenue_{end}"] = assumed["ticket_price"] * tickets
        result[f"filled_{end}_percent"] = round(tickets / assumed["capacity"] * 100, 1)
    return result


def _from_file(settings, context: SourceContext, policy: BadRowPolicy, key: str, names: tuple[str, ...],
               reader: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    if key not in settings:
        return {name: Unavailable(name, f"sources.marketing.{key} is not set") for name in names}
    path = context.resolve(settings[key])
    try:
        return reader(path, settings, context, policy)
    except MissingFile as exc:
        # A missing file costs only its own metrics; a bad row under 'fail' still fails the whole source.
        return {name: Unavailable(name, str(exc)) for name in names}


def read_channels(path, settings, context: SourceContext, policy: BadRowPolicy) -> dict[str, Any]:
    ota_order = list(settings.get("ota_channels", DEFAULT_OTA_CHANNELS))
    ota_names = {name.lower() for name in ota_order}
    channels = []
    for line, row in read_rows(path, ["channel", "status", "detail"], policy=policy):
        status = row["status"].lower()
        if policy.reject([] if status in CHANNEL_STATUSES else [
                RowProblem(str(path), line, "status", row["status"], f"expected one of {', '.join(CHANNEL_STATUSES)}")]):
            continue
        channels.append({"channel": row["channel"], "status": status, "detail": row["detail"],
                         "ota": row["channel"].lower() in ota_names})
    sequence = ota_sequence(ota_order, channels)
    return {
        "marketing.channels": channels,
        "marketing.live_channel_count": sum(1 for c in channels if c["status"] == "live"),
        "marketing.visibility": {c["channel"]: c["status"] for c in channels},
        "marketing.ota_listings": sum(1 for c in channels if c["ota"] and c["status"] == "live"),
        "marketing.ota_sequence": sequence,
        "marketing.ota_order": ", ".join(f"{step['step']}. {step['channel']} ({step['state']})" for step in sequence)
        if any(c["ota"] for c in channels) else "",
        "marketing.channel_presence": [
            {"channel": c["channel"], "live": int(c["status"] == "live"), "partial": int(c["status"] == "partial"),
             "not_yet": int(c["status"] not in ("live", "partial"))} for c in channels if c["status"] != "n/a"],
        "marketing.not_live": ", ".join(f"{c['channel']} ({c['status']})" for c in channels
                                        if c["status"] != "live") or "—",
    }


def ota_sequence(order: list[str], channels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name = {c["channel"].lower(): c for c in channels}
    sequence = []
    next_marked = False
    for step, name in enumerate(order, start=1):
        listed = by_name.get(name.lower())
        status = listed["status"] if listed else "missing"
        is_next = not next_marked and status not in ("live", "n/a")
        next_marked = next_marked or is_next
        sequence.append({"step": step, "channel": listed["channel"] if listed else name, "status": status,
                         "detail": listed["detail"] if listed else "not in the channels file",
                         "next": is_next, "state": f"{status} — next" if is_next else status})
    return sequence


def read_subscribers(path, settings, context: SourceContext, policy: BadRowPolicy) -> dict[str, Any]:
    latest: dict[str, tuple[str, dt.date]] = {}
    for line, row in read_rows(path, ["email", "status", "subscribed_on"], policy=policy):
        problems = []
        address = row["email"].lower()
        if not _EMAIL.match(address):
            problems.append(RowProblem(str(path), line, "email", row["email"], "not an email address"))
        status = row["status"].lower()
        if status not in SUBSCRIBER_STATUSES:
            problems.append(RowProblem(str(path), line, "status", row["status"],
                                       f"expected one of {', '.join(SUBSCRIBER_STATUSES)}"))
        try:
            since = parse_date(row["subscribed_on"])
        except ValueError as exc:
            problems.append(RowProblem(str(path), line, "subscribed_on", row["subscribed_on"], str(exc)))
        if policy.reject(problems):
            continue
        if since <= context.period_end:  # the list as it stood at the period end
            latest[address] = (status, since)
    subscribed = [since for status, since in latest.values() if status == "subscribed"]
    return {
        "marketing.email_list_size": len(subscribed),
        "marketing.email_list_new_in_period": sum(1 for since in subscribed if since >= context.period_start),
    }


def read_campaigns(path, settings, context: SourceContext, policy: BadRowPolicy) -> dict[str, Any]:
    campaigns = []
    for line, row in read_rows(path, ["campaign", "channel", "start", "end", "spend", "leads"], policy=policy):
        problems = []
        parsed: dict[str, Any] = {}
        for column in ("start", "end"):
            try:
                parsed[column] = parse_date(row[column])
            except ValueError as exc:
                problems.append(RowProblem(str(path), line, column, row[column], str(exc)))
        try:
            parsed["spend"] = parse_amount(row["spend"])
        except ValueError as exc:
            problems.append(RowProblem(str(path), line, "spend", row["spend"], str(exc)))
        if not row["leads"].isdigit():
            problems.append(RowProblem(str(path), line, "leads", row["leads"], "not a whole number"))
        if not problems and parsed["end"] < parsed["start"]:
            problems.append(RowProblem(str(path), line, "end", row["end"], "ends before it starts"))
        if policy.reject(problems):
            continue
        leads = int(row["leads"])
        if parsed["start"] > context.period_end:
            status = "planned"
        elif parsed["end"] < context.period_end:
            status = "finished"
        else:
            status = "running"
        campaigns.append({
            "campaign": row["campaign"], "channel": row["channel"], "start": parsed["start"], "end": parsed["end"],
            "status": status, "spend": parsed["spend"], "leads": leads,
            "cost_per_lead": (parsed["spend"] / leads).quantize(Decimal("0.01")) if leads else None,
        })
    return {
        "marketing.campaigns": campaigns,
        "marketing.active_campaign_count": sum(1 for c in campaigns if c["status"] == "running"),
    }
