"""Marketing source: the channel visibility list per tenant (CSV: channel, status, detail).

Status is one of live, partial, missing, planned. Settings: ``channels`` (the CSV path).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flows.errors import SourceError
from sources.registry import REGISTRY, MetricSpec, SourceContext
from sources.tabular import read_csv_rows

CHANNEL_STATUSES = ("live", "partial", "missing", "planned")

METRICS = [
    MetricSpec("marketing.channels", "Each marketing channel with its status and detail "
               "(rows: channel, status, detail).", "table"),
    MetricSpec("marketing.live_channel_count", "Number of channels whose status is live.", "number"),
]


@REGISTRY.register("marketing", "Marketing channel visibility, kept as CSV.", METRICS)
def gather_marketing(settings: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    if "channels" not in settings:
        raise SourceError(f"tenant '{context.tenant_id}': sources.marketing.channels is not set")
    path = context.resolve(settings["channels"])
    channels = []
    for line, row in read_csv_rows(path, ["channel", "status", "detail"]):
        status = row["status"].lower()
        if status not in CHANNEL_STATUSES:
            raise SourceError(f"{path}:{line}: column 'status': expected one of {', '.join(CHANNEL_STATUSES)} "
                              f"(value {row['status']!r})")
        channels.append({"channel": row["channel"], "status": status, "detail": row["detail"]})
    return {
        "marketing.channels": channels,
        "marketing.live_channel_count": sum(1 for c in channels if c["status"] == "live"),
    }
