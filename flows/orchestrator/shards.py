"""A run split into shards: how many, which tenants each takes, and the one summary their results make.

With ``shards`` above 1 the run's tenants are split into contiguous shards; each shard is its own flow run on
the work pool (``flows.flow.send_exec_reports_shard``): it gathers every figure its tenants need, renders and
delivers their own reports (the general manager briefs) and hands its figures back through Prefect's result
storage. The parent renders the portfolio reports from them. This module is the plain part: nothing here
imports Prefect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from flows.gather.gather import tenant_batches
from flows.orchestrator.summary import Outcome, failure_entry
from flows.plan.plan import MetricValues, ReportInstance

# "auto": one shard per this many tenants, at most one per worker online in the pool.
TENANTS_PER_SHARD = 50
# A shard whose flow run failed or crashed is submitted once more (any worker may take it); delivery
# claims keep what it already sent from going out twice.
SHARD_ATTEMPTS = 2


def shard_count(setting: Any, tenant_count: int, online_workers: int = 1) -> int:
    """How many shards a run of ``tenant_count`` tenants takes: ``setting`` is a whole number (1: no
    sharding) or "auto" (one per TENANTS_PER_SHARD tenants, at most one per online worker, at least 1)."""
    if setting is None:
        return 1
    if setting == "auto":
        return max(1, min(max(online_workers, 1), math.ceil(tenant_count / TENANTS_PER_SHARD)))
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ValueError(f"shards must be a whole number of at least 1 or \"auto\", got {setting!r}")
    return max(1, min(setting, tenant_count))


def split_shards(tenant_ids: list[str], count: int) -> list[list[str]]:
    """Contiguous shards of near-equal size, in the portfolio's order."""
    return tenant_batches(tenant_ids, count)


class ShardResult:
    """What a shard's flow run hands back through result storage: its tenants' figures (the portfolio
    reports are rendered from them) and the outcomes of the reports it delivered. A plain class, not a
    dataclass: Prefect walks a flow's return value looking for futures inside lists, dicts and dataclasses,
    which over every figure of 50 tenants costs seconds; it leaves an object like this one alone."""

    def __init__(self, shard: int, tenants: list[str], values: MetricValues, outcomes: list[Outcome],
                 summary: dict[str, Any]) -> None:
        self.shard, self.tenants, self.values, self.outcomes, self.summary = shard, tenants, values, outcomes, summary

    def __repr__(self) -> str:
        return f"ShardResult(shard={self.shard}, tenants={len(self.tenants)}, outcomes={len(self.outcomes)})"


@dataclass
class ShardRun:
    """One shard as the parent saw it: its flow runs (one per attempt) and how it ended."""

    shard: int
    tenants: list[str]
    flow_runs: list[str] = field(default_factory=list)
    state: str = "pending"  # the last attempt's final state: Completed, Failed, Crashed, ...
    reason: str = ""  # why the last attempt did not complete

    def as_json(self) -> dict[str, Any]:
        return {"shard": self.shard, "tenants": self.tenants, "flow_runs": self.flow_runs, "attempts":
                len(self.flow_runs), "state": self.state, "reason": self.reason}


def shard_notes(shards: list[dict[str, Any]]) -> list[str]:
    """One sentence per shard that needed more than one attempt or never completed (a summary's ``shards``),
    for the operations alert: which shard, which tenants, what happened, what it means."""
    notes = []
    for shard in shards:
        tenants = shard["tenants"]
        who = f"shard {shard['shard']}" + (f" ({tenants[0]})" if len(tenants) == 1 else
                                           f" ({len(tenants)} tenants: {tenants[0]} .. {tenants[-1]})" if tenants else "")
        if shard["state"] != "Completed":
            notes.append(f"{who} did not complete after {shard['attempts']} attempt(s): {shard['state']}: "
                         f"{shard['reason']}. Its tenants' own reports are listed as failures; the portfolio "
                         "reports follow on_missing_tenant.")
        elif shard["attempts"] > 1:
            notes.append(f"{who} completed on attempt {shard['attempts']}, after: {shard['reason']}. The new attempt "
                         "skipped what the earlier one had sent.")
    return notes


def shard_rows(shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A summary's ``shards`` as the run page's table: the tenants counted with the first three named."""
    return [{**shard, "tenants": f"{len(shard['tenants'])}: {', '.join(shard['tenants'][:3])}"
             + (" …" if len(shard["tenants"]) > 3 else ""), "flow_runs": ", ".join(shard["flow_runs"])}
            for shard in shards]


def unfinished_shard_outcomes(runs: list[ShardRun], instances: list[ReportInstance]) -> list[Outcome]:
    """A failure for each tenant report of a shard that never completed (or, for a tenant without reports of
    its own, one naming the shard): the run's deliveries table, failures page, status board and alert list
    them like any failed message. Whether each was sent before the shard died the delivery records know; a
    re-run sends what is missing."""
    roles_of: dict[str, list[str]] = {}
    for instance in instances:
        roles_of.setdefault(instance.key, []).append(instance.role)
    outcomes = []
    for run in runs:
        if run.state == "Completed":
            continue
        reason = (f"shard {run.shard} did not complete after {len(run.flow_runs)} attempt(s) ({run.state}: "
                  f"{run.reason}); this tenant's own reports may not have been sent (a re-run sends what is "
                  "missing) and the portfolio reports follow on_missing_tenant")
        for tenant in run.tenants:
            outcomes.extend(Outcome(role, tenant, [], "failed", reason=reason)
                            for role in roles_of.get(tenant) or [f"shard {run.shard}"])
    return outcomes


def merge_shard_summaries(summary: dict[str, Any], results: list[ShardResult], runs: list[ShardRun],
                          unfinished: list[Outcome]) -> None:
    """The parent's summary (its portfolio reports) gains what every shard delivered, once each, the failures
    of the shards that never completed (``unfinished_shard_outcomes``), and ``shards``: each shard's tenants,
    flow runs, attempts and end."""
    seen_failures = {(f["report"], f["tenant"], f["reason"]) for f in summary["failed"]}
    for result in results:
        for key in ("sent", "dry_run", "skipped", "checks", "actions"):
            summary[key].extend(result.summary.get(key) or [])
        for failure in result.summary.get("failed") or []:
            # A broken report definition is every shard's and the parent's problem: listed once.
            if (failure["report"], failure["tenant"], failure["reason"]) not in seen_failures:
                seen_failures.add((failure["report"], failure["tenant"], failure["reason"]))
                summary["failed"].append(failure)
        summary["warnings"] = sorted(set(summary["warnings"]) | set(result.summary.get("warnings") or []))
    summary["failed"].extend(failure_entry(outcome) for outcome in unfinished)
    summary["shards"] = [run.as_json() for run in runs]
