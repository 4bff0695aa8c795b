"""The "last sent" view: from the delivery tables that runs leave behind, the latest successful
send per report and tenant, and the latest failures. Plain data in, plain data out; fetching the
tables from the Prefect API is ``flows.flow.fetch_delivery_tables`` (or ``flows.trigger.prefect_api`` in the
Lambda trigger, which has no Prefect). Standard library only: the trigger's zip carries this module."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# The key of the table artifact each run leaves: one row per message (report, tenant, status, ...).
DELIVERY_TABLE_KEY = "exec-reports-deliveries"


@dataclass(frozen=True)
class DeliveryTable:
    created: dt.datetime
    flow_run_id: str
    rows: list[dict[str, Any]]


@dataclass
class History:
    # (report, tenant) -> {"time", "flow_run_id", "recipients", "variant"}
    last_sent: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "last_sent": [{"report": report, "tenant": tenant, **entry, "time": entry["time"].isoformat()}
                          for (report, tenant), entry in sorted(self.last_sent.items())],
            "failures": [{**failure, "time": failure["time"].isoformat()} for failure in self.failures],
        }


def summarise_history(tables: list[DeliveryTable], failure_limit: int = 10) -> History:
    history = History()
    for table in sorted(tables, key=lambda t: t.created, reverse=True):
        for row in table.rows:
            key = (str(row.get("report", "")), str(row.get("tenant", "")))
            if row.get("status") == "sent":
                entry = history.last_sent.get(key)
                if entry is None:
                    history.last_sent[key] = {"time": table.created, "flow_run_id": table.flow_run_id,
                                              "recipients": [str(row.get("recipients", ""))],
                                              "variant": row.get("variant", "")}
                elif entry["flow_run_id"] == table.flow_run_id:
                    entry["recipients"].append(str(row.get("recipients", "")))
            elif row.get("status") == "failed" and len(history.failures) < failure_limit:
                history.failures.append({"time": table.created, "flow_run_id": table.flow_run_id,
                                         "report": key[0], "tenant": key[1], "reason": row.get("reason", "")})
    return history


# Left to right as the UI shows them: what happened, to which report and whom, and why, before the dates
# and run names. ``reason`` is short (the run's exec-reports-failures artifact has the whole text).
STATUS_COLUMNS = ("last_outcome", "report", "tenant", "reason", "recipients", "last_sent", "last_failure",
                  "last_failure_reason", "last_run", "last_sent_run", "last_failure_run")
FAILED = "FAILED"  # capitals, as in `exec-reports run`'s table: the one outcome to look at first
STATUS_REASON_CHARACTERS = 100


def _short(text: str, limit: int = STATUS_REASON_CHARACTERS) -> str:
    """The first line, cut to ``limit`` characters with an ellipsis (this module stays standard library only)."""
    first = " ".join(str(text).strip().splitlines()[0].split()) if str(text).strip() else ""
    return first if len(first) <= limit else first[: limit - 1].rstrip(" ,;:") + "…"


def _current_layout(row: dict[str, Any]) -> dict[str, Any]:
    """A row of an earlier board (``failed``, ``skipped: <reason>``) in today's columns."""
    entry = {column: row.get(column, "") for column in STATUS_COLUMNS}
    outcome = str(entry["last_outcome"])
    if outcome == "failed":
        entry.update(last_outcome=FAILED, reason=entry["reason"] or _short(entry["last_failure_reason"]))
    elif outcome.startswith("skipped: "):
        entry.update(last_outcome="skipped", reason=entry["reason"] or _short(outcome.removeprefix("skipped: ")))
    return entry


def update_status_board(previous: list[dict[str, Any]], outcomes: list[dict[str, Any]], *, run_name: str,
                        now: dt.datetime) -> list[dict[str, Any]]:
    """The status board after one more run: one row per report and tenant, keeping what earlier runs said,
    failures first.

    ``previous`` is the board the last run left (rows of STATUS_COLUMNS, or of an older layout);
    ``outcomes`` this run's delivery rows (report, tenant, recipients, status, reason). A dry run changes
    nothing. Within one run, a report sent to some recipients and failed for others counts as failed
    (with the first reason) and sent."""
    board = {(row.get("report", ""), row.get("tenant", "")): _current_layout(row) for row in previous
             if row.get("report")}
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    this_run: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for outcome in outcomes:
        if outcome.get("status") in ("sent", "failed", "skipped") and outcome.get("report"):
            this_run.setdefault((outcome["report"], outcome.get("tenant", "")), []).append(outcome)
    for (report, tenant), rows in this_run.items():
        entry = board.setdefault((report, tenant), {column: "" for column in STATUS_COLUMNS})
        recipients = [r for row in rows for r in str(row.get("recipients", "")).split(", ") if r]
        entry.update(report=report, tenant=tenant, last_run=f"{run_name} ({stamp})",
                     recipients=", ".join(dict.fromkeys(recipients)))
        statuses = {row["status"] for row in rows}
        failed = [row for row in rows if row["status"] == "failed"]
        if "sent" in statuses:
            entry.update(last_sent=stamp, last_sent_run=run_name)
        if failed:
            reason = _short(failed[0].get("reason", ""))
            entry.update(last_outcome=FAILED, reason=reason, last_failure=stamp, last_failure_run=run_name,
                         last_failure_reason=reason)
        elif "sent" in statuses:
            entry.update(last_outcome="sent", reason="")
        else:
            entry.update(last_outcome="skipped", reason=_short(rows[0].get("reason", "")))
    return [board[key] for key in sorted(board, key=lambda key: (board[key]["last_outcome"] != FAILED, key))]
