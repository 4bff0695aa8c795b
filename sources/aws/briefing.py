"""Figures the engineering brief shows that are worked from the other AWS figures, each defined once so no
template computes them: the security gaps by kind, the buckets open to the public (and those a public
access block closes), repositories without CI/CD, the cost range, last month's cost by service, the
findings as engineering actions (priority and due date by severity), the slow functions and the APIs with
server errors, what the inventory holds in words, and where each error line is for the run summary.
Computed the same way from live AWS and from a snapshot, after either is read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sources.registry import MetricSpec, Unavailable, is_available

# The security gaps the engineering brief counts, in its order, with the finding kinds behind each.
SECURITY_GAPS = (
    ("Hardcoded keys in code", ("repository-hardcoded-secret",)),
    ("Plaintext secrets (Lambda env)", ("lambda-plaintext-secret",)),
    ("Unauthenticated endpoints", ("api-route-without-authorization",)),
    ("No WAF", ("cloudfront-no-waf",)),
    ("Open security groups", ("security-group-open-to-internet",)),
    ("Public buckets", ("s3-public-bucket-policy", "s3-no-public-access-block")),
    ("No point-in-time recovery", ("dynamodb-no-point-in-time-recovery",)),
    ("Deprecated runtimes", ("lambda-deprecated-runtime",)),
)
# How urgent a finding is as an engineering action, and in how many days it is due, by its severity.
ACTION_TERMS = {"critical": ("critical", 3), "high": ("high", 14), "medium": ("medium", 30), "low": ("low", 60),
                "info": ("low", 90)}
# A function is slow when 1 call in 20 takes longer than this (its p95 duration, in milliseconds).
SLOW_P95_MS = 1000

METRICS = [
    MetricSpec("aws.security_gaps", "Security findings counted by gap, in the engineering brief's order (rows: "
               "order, gap, findings, present = 1 when the tenant has the gap).", "list"),
    MetricSpec("aws.urgent_findings", "Critical and high security findings, counted: what the engineering brief's "
               "first screen shows.", "number", better="down", total=True),
    MetricSpec("aws.findings_named", "The security findings of each severity in words, for a check's message: "
               "severity -> the first finding's problem, with \"(and 2 more high findings)\" after it when there "
               "are more; \"\" for a severity without findings.", "mapping"),
    MetricSpec("aws.open_bucket_count", "How many buckets are open to the public (aws.public_buckets_open).",
               "number", better="down", total=True),
    MetricSpec("aws.public_buckets_open", "Buckets whose policy grants public access and whose public access "
               "block is not fully on (rows: name, why).", "list"),
    MetricSpec("aws.public_buckets_blocked", "Buckets whose policy would grant public access but whose public "
               "access block is fully on, so they are not open today (rows: name).", "list"),
    MetricSpec("aws.repositories_without_ci", "Code repositories without a CI/CD pipeline (rows: name).", "list"),
    MetricSpec("aws.cost_range", "Lowest and highest monthly AWS cost of the months read (keys: low, high, "
               "months).", "mapping"),
    MetricSpec("aws.cost_by_service_last_month", "Last full month's AWS cost by service, highest first (rows: "
               "month, service, amount).", "list"),
    MetricSpec("aws.engineering_actions", "Each security finding as an engineering action, most severe first "
               "(rows: fix = \"fix (resource)\", priority, due_in_days by severity: critical 3 days, high 14, "
               "medium 30, low 60, info 90 at low priority; owner cto).", "list"),
    MetricSpec("aws.inventory_labels", "What the inventory holds in words (keys: lambda, apis, tables, buckets; "
               "each a list like \"api (python3.12, deprecated)\").", "mapping"),
    MetricSpec("aws.slow_functions", f"Lambda functions that took more than {SLOW_P95_MS:,} ms on at least 1 call "
               "in 20 (p95 duration above it), slowest first (rows as aws.lambda_performance).", "list"),
    MetricSpec("aws.apis_with_server_errors", "APIs that returned server errors (5XX) in the period, most first "
               "(rows as aws.api_performance).", "list"),
    MetricSpec("aws.cloudfront_origins", "What the tenant's domains on CloudFront are served from, each kind once "
               "(from aws.stacks_by_domain's origin_kind: \"API Gateway\", \"S3\", ...).", "list"),
    MetricSpec("aws.error_details", "Each error line with its tenant, function and time, for the run summary and "
               "the log, never an email.", "list"),
]


def findings_named(findings: list[Mapping[str, Any]]) -> dict[str, str]:
    """severity -> "The policy of bucket x allows ... (and 1 more high finding)": what a check says, so the
    reader learns what the finding is where it is reported, not a count."""
    named = {}
    for severity in ("critical", "high", "medium", "low", "info"):
        of_severity = [f for f in findings if f["severity"] == severity]
        if not of_severity:
            named[severity] = ""
            continue
        first = of_severity[0]["problem"].rstrip(".")
        more = len(of_severity) - 1
        named[severity] = first + (f" (and {more} more {severity} finding{'s' if more > 1 else ''})" if more else "")
    return named


def briefing_figures(values: Mapping[str, Any], tenant_id: str) -> dict[str, Any]:
    findings = values.get("aws.security_findings")
    result: dict[str, Any] = {}
    if findings is not None and is_available(findings):
        result["aws.security_gaps"] = [
            {"order": order, "gap": gap, "findings": count, "present": 1 if count else 0}
            for order, (gap, kinds) in enumerate(SECURITY_GAPS, start=1)
            for count in [sum(1 for f in findings if f["kind"] in kinds)]]
        result["aws.engineering_actions"] = [
            {"fix": f"{f['fix']} ({f['resource']})", "priority": ACTION_TERMS[f["severity"]][0],
             "due_in_days": ACTION_TERMS[f["severity"]][1], "owner": "cto", "severity": f["severity"]}
            for f in findings]
        result["aws.urgent_findings"] = sum(1 for f in findings if f["severity"] in ("critical", "high"))
        result["aws.findings_named"] = findings_named(findings)
    else:
        for name in ("aws.security_gaps", "aws.engineering_actions", "aws.urgent_findings", "aws.findings_named"):
            result[name] = _unavailable(name, findings)
    buckets = values.get("aws.s3_buckets")
    if buckets is not None and is_available(buckets):
        public = [b for b in buckets if b.get("policy_public")]
        # A public policy is open only while the public access block is not fully on: a full block overrides it.
        result["aws.public_buckets_open"] = [
            {"name": b["name"], "why": "no public access block stops it" if b["public_access_block"] == "missing"
             else "its public access block is only partly on"}
            for b in public if b["public_access_block"] != "full"]
        result["aws.public_buckets_blocked"] = [{"name": b["name"]} for b in public
                                                if b["public_access_block"] == "full"]
        result["aws.open_bucket_count"] = len(result["aws.public_buckets_open"])
    else:
        for name in ("aws.public_buckets_open", "aws.public_buckets_blocked", "aws.open_bucket_count"):
            result[name] = _unavailable(name, buckets)
    repositories = values.get("aws.code_repositories")
    result["aws.repositories_without_ci"] = [{"name": r["name"]} for r in repositories if not r["pipeline"]] \
        if repositories is not None and is_available(repositories) else _unavailable(
            "aws.repositories_without_ci", repositories)
    result.update(_activity(values))
    stacks = values.get("aws.stacks_by_domain")
    result["aws.cloudfront_origins"] = sorted({row["origin_kind"] for row in stacks if row.get("origin_kind")}) \
        if stacks is not None and is_available(stacks) else _unavailable("aws.cloudfront_origins", stacks)
    result.update(_costs(values))
    result["aws.inventory_labels"] = _labels(values)
    lines = values.get("aws.lambda_error_lines")
    result["aws.error_details"] = [f"{tenant_id}: {line['function']} {line['time']}: {line['message']}"
                                   for line in lines] if lines is not None and is_available(lines) else \
        _unavailable("aws.error_details", lines)
    return result


def _unavailable(name: str, source: Any) -> Unavailable:
    return Unavailable(name, source.reason if isinstance(source, Unavailable) else "not gathered",
                       getattr(source, "plain", ""))


_GLUED_PREFIX = re.compile(r"^(Amazon|AWS)(?=[A-Z][a-z])")


def service_words(name: str) -> str:
    """A Cost Explorer service name as a reader writes it: "AmazonCloudWatch" -> "Amazon CloudWatch"
    (Cost Explorer glues a few; "Amazon Simple Email Service" is kept as it is)."""
    return _GLUED_PREFIX.sub(r"\1 ", name)


def _activity(values: Mapping[str, Any]) -> dict[str, Any]:
    """The slow functions and the APIs with server errors, worked once here for the checks and the brief."""
    functions, apis = values.get("aws.lambda_performance"), values.get("aws.api_performance")
    result: dict[str, Any] = {}
    if functions is not None and is_available(functions):
        result["aws.slow_functions"] = sorted((f for f in functions if (f["p95_duration_ms"] or 0) > SLOW_P95_MS),
                                              key=lambda f: -f["p95_duration_ms"])
    else:
        result["aws.slow_functions"] = _unavailable("aws.slow_functions", functions)
    if apis is not None and is_available(apis):
        result["aws.apis_with_server_errors"] = sorted((a for a in apis if a["server_errors"]),
                                                       key=lambda a: -a["server_errors"])
    else:
        result["aws.apis_with_server_errors"] = _unavailable("aws.apis_with_server_errors", apis)
    return result


def _costs(values: Mapping[str, Any]) -> dict[str, Any]:
    totals, by_service = values.get("aws.monthly_cost_total"), values.get("aws.monthly_cost_by_service")
    result: dict[str, Any] = {}
    if totals is not None and is_available(totals) and totals:
        amounts = [row["amount"] for row in totals]
        result["aws.cost_range"] = {"low": min(amounts), "high": max(amounts), "months": len(amounts)}
    else:
        result["aws.cost_range"] = _unavailable("aws.cost_range", totals) if totals is None or not is_available(
            totals) else Unavailable("aws.cost_range", "no months of cost recorded", "no cost recorded")
    if by_service is not None and is_available(by_service) and by_service:
        last = max(row["month"] for row in by_service)
        result["aws.cost_by_service_last_month"] = sorted(
            ({**row, "service": service_words(row["service"])} for row in by_service if row["month"] == last),
            key=lambda row: -row["amount"])
    else:
        result["aws.cost_by_service_last_month"] = [] if by_service is not None and is_available(by_service) else \
            _unavailable("aws.cost_by_service_last_month", by_service)
    return result


def _labels(values: Mapping[str, Any]) -> dict[str, Any]:
    def listed(name: str, label) -> Any:
        rows = values.get(name)
        return [label(row) for row in rows] if rows is not None and is_available(rows) else "not available"

    names = ("aws.lambda_functions", "aws.api_endpoints", "aws.dynamodb_tables", "aws.s3_buckets")
    if not any(values.get(name) is not None and is_available(values.get(name)) for name in names):
        return _unavailable("aws.inventory_labels", values.get("aws.lambda_functions"))
    return {
        "lambda": listed("aws.lambda_functions", lambda f: f"{f['name']} ({f['runtime']}"
                         + (", deprecated)" if f["deprecated_runtime"] else ")")),
        "apis": listed("aws.api_endpoints", lambda a: f"{a['name']} ({a['kind']}, {a['routes']} route"
                       + ("" if a["routes"] == 1 else "s") + (f", open: {a['open_routes']})" if a["open_routes"]
                                                              else ")")),
        "tables": listed("aws.dynamodb_tables", lambda d: d["name"] + ("" if d["point_in_time_recovery"]
                                                                       else " (no PITR)")),
        "buckets": listed("aws.s3_buckets", lambda b: b["name"] + ("" if b["public_access_block"] == "full" else
                                                                   f" (public access block {b['public_access_block']})")),
    }
