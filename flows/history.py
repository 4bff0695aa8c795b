"""The "last sent" view: from the delivery tables that runs leave behind, the latest successful
send per report and tenant, and the latest failures. Plain data in, plain data out; fetching the
tables from the Prefect API is ``flows.flow.fetch_delivery_tables``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


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
