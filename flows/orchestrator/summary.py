"""What a run did, as data: one ``Outcome`` per message (sent, failed, skipped, dry-run), the JSON run
summary built from them (with the checks that fired, the warnings and the agenda), and for authors
which metrics each report read and which came back unavailable."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from flows.core.errors import Problem
from flows.core.period import Period
from flows.plan.definitions import ReportDefinition
from flows.plan.plan import MetricValues
from flows.render.checks import CheckResult
from sources.registry import Unavailable


@dataclass
class Outcome:
    report: str
    tenant: str
    recipients: list[str]
    status: str  # sent | failed | skipped | dry-run
    location: str = ""
    reason: str = ""
    subject: str = ""
    warnings: list[str] = field(default_factory=list)
    variant: str = ""


def failure_entry(outcome: Outcome) -> dict[str, Any]:
    """A failed outcome as the summary's ``failed`` lists it."""
    return {"report": outcome.report, "tenant": outcome.tenant, "recipients": outcome.recipients,
            "reason": outcome.reason}


def summarise(period: Period, outcomes: list[Outcome], checks: list[tuple[str, CheckResult]],
              definition_problems: list[Problem], run_folder: str = "",
              actions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    failed = [failure_entry(o) for o in outcomes if o.status == "failed"]
    # Keyed by role, as every other failure is (the file and line are in the reason).
    failed.extend({"report": p.role or p.path, "tenant": "", "recipients": [], "reason": str(p)}
                  for p in definition_problems)
    return {
        "period": period.label,
        "run": run_folder,
        "sent": [{"report": o.report, "tenant": o.tenant, "recipients": o.recipients, "location": o.location,
                  "subject": o.subject, "variant": o.variant} for o in outcomes if o.status == "sent"],
        "dry_run": [{"report": o.report, "tenant": o.tenant, "recipients": o.recipients, "subject": o.subject,
                     "variant": o.variant} for o in outcomes if o.status == "dry-run"],
        "failed": failed,
        "skipped": [{"report": o.report, "tenant": o.tenant, "recipients": o.recipients, "reason": o.reason}
                    for o in outcomes if o.status == "skipped"],
        "checks": [{"report": role, **asdict(c)} for role, c in checks],
        "warnings": sorted({f"{o.report}/{o.tenant}: {w}" for o in outcomes for w in o.warnings}),
        "actions": list(actions or []),
    }


def run_folder_name(period: Period, started: dt.datetime | None = None) -> str:
    started = started or dt.datetime.now(dt.UTC)
    return f"{period.label}_{started:%Y%m%dT%H%M%SZ}"


def add_delivery_feedback(summary: dict[str, Any], new_suppressions: list[dict[str, str]]) -> None:
    """Addresses SES reported as permanently bouncing or complaining since the last run: listed once."""
    summary["delivery_feedback"] = new_suppressions
    summary["warnings"].extend(f"{entry['address']} is now suppressed: {entry['why']} (SES message "
                               f"{entry['message_id']}, {entry['since']})" for entry in new_suppressions)


def metric_usage(definitions: Iterable[ReportDefinition], values: MetricValues) -> list[str]:
    """For authors: per report file, the metrics it reads and those that came back unavailable (which
    tenants, why), so a report that silently shows "not available" is visible before it is merged."""
    lines = []
    for definition in sorted(definitions, key=lambda d: d.shown_path):
        lines.append(f"{definition.shown_path}: metrics {', '.join(definition.all_metrics)}")
        by_reason: dict[tuple[str, str], list[str]] = defaultdict(list)
        for tenant_id, tenant_values in values.items():
            if definition.tenant_override and tenant_id != definition.tenant_override:
                continue
            for name in definition.all_metrics:
                value = tenant_values.get(name)
                if isinstance(value, Unavailable):
                    by_reason[(name, value.reason)].append(tenant_id)
        for (name, reason), tenants in sorted(by_reason.items()):
            lines.append(f"  unavailable: {name} for {', '.join(tenants)}: {reason}")
    return lines


# The counts a run's brief summary gives, one per list of the whole summary.
BRIEF_COUNTS = ("sent", "dry_run", "failed", "skipped", "checks", "warnings", "actions")


def brief_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """What a flow run returns and Prefect keeps: counts and ids, the size of a few lines at any number of
    tenants. Prefect walks a flow's return value for futures and writes it to result storage; the whole
    summary (every message, check and action: ~68,000 nodes at 100 tenants) cost 0.4 s there. The detail
    lives in the run's artifacts (deliveries table, failures, checks) and the delivery records."""
    return {"period": summary["period"], "run": summary["run"],
            "counts": {key: len(summary.get(key) or []) for key in BRIEF_COUNTS},
            "failed": [{"report": item["report"], "tenant": item["tenant"]} for item in summary["failed"]]}


class RunDetails:
    """The whole summary of the runs this process ran, by run id, for the caller that started them (the
    CLI's table, an inline trigger's response, the alert hook): it never goes through Prefect. Bounded:
    a long-lived process (a worker, a test session) keeps only the latest runs'."""

    def __init__(self, keep: int = 16):
        self.keep = keep
        self._summaries: dict[str, dict[str, Any]] = {}

    def remember(self, run_id: str, summary: dict[str, Any]) -> None:
        self._summaries.pop(run_id, None)
        self._summaries[run_id] = summary
        while len(self._summaries) > self.keep:
            self._summaries.pop(next(iter(self._summaries)))

    def get(self, run_id: str) -> dict[str, Any] | None:
        return self._summaries.get(run_id)
