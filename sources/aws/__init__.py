"""AWS source: what each tenant runs on AWS, what is exposed, and what it costs.

Settings live under ``tenants[i].sources.aws`` (see ``sources.aws.settings.KNOWN_KEYS`` and the
docs/sources.md, "AWS source"). A tenant either reads live AWS through boto3 or points ``snapshot``
at a JSON file written by ``exec-reports snapshot aws``; both paths yield the same metric values
because live values are passed through the same JSON encoding the snapshot uses.

boto3 and detect-secrets are imported inside functions: importing this package stays cheap.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from sources.aws import briefing
from sources.aws.briefing import briefing_figures
from sources.aws.findings import (
    api_findings,
    cloudfront_findings,
    count_by_severity,
    dynamodb_findings,
    lambda_findings,
    repository_findings,
    s3_findings,
    security_group_findings,
    sort_findings,
)
from sources.aws.settings import AwsSettings, parse_settings
from sources.errors import SourceError
from sources.ledger.books import full_months_before
from sources.registry import REGISTRY, MetricSpec, SourceContext, Unavailable

SNAPSHOT_FORMAT = "exec-reports/aws-snapshot/1"
_UNAVAILABLE = "__unavailable__"

METRICS = [
    MetricSpec("aws.account_id", "The AWS account the tenant's credentials act in.", "text"),
    MetricSpec("aws.gathered_at", "When these AWS figures were read (UTC; for a snapshot, when it was taken).",
               "date"),
    MetricSpec("aws.lambda_functions", "Lambda functions (rows: name, region, runtime, memory_mb, last_modified, "
               "deprecated_runtime).", "table"),
    MetricSpec("aws.s3_buckets", "S3 buckets (rows: name, region, public_access_block full/partial/missing, "
               "public_policy none/conditional/unconditional as the policy is written, policy_public = AWS's "
               "own verdict from GetBucketPolicyStatus that the policy makes the bucket public).", "table"),
    MetricSpec("aws.dynamodb_tables", "DynamoDB tables (rows: name, region, point_in_time_recovery).", "table"),
    MetricSpec("aws.cloudfront_distributions", "CloudFront distributions (rows: id, domain_name, aliases, "
               "origins, web_acl), aliases and origins as comma-separated text.", "table"),
    MetricSpec("aws.route53_zones", "Route 53 hosted zones (rows: name, id, private, record_count).", "table"),
    MetricSpec("aws.route53_records", "Route 53 address records, A/AAAA/CNAME only (rows: zone, name, type, "
               "target).", "table"),
    MetricSpec("aws.api_endpoints", "API Gateway REST and HTTP APIs (rows: name, id, kind, region, routes, "
               "open_routes = routes callable without authorization).", "table"),
    MetricSpec("aws.stacks_by_domain", "The stack behind each of the tenant's domains: domain -> CloudFront "
               "-> origin (rows: domain, record, distribution, origin, origin_kind S3/API Gateway/Lambda/"
               "custom).", "table"),
    MetricSpec("aws.security_findings", "Security findings, most severe first (rows: severity, kind, resource, "
               "tenant, problem, fix); never contains a secret value.", "list"),
    MetricSpec("aws.security_finding_counts", "Number of security findings per severity (critical, high, "
               "medium, low, info).", "mapping"),
    MetricSpec("aws.monthly_cost_by_service", "Cost Explorer unblended cost per full month and service, in "
               "USD rounded to cents (rows: month, service, amount).", "table"),
    MetricSpec("aws.monthly_cost_total", "Unblended cost per full month, the sum of that month's per-service "
               "amounts (rows: month, amount).", "table"),
    MetricSpec("aws.last_month_cost", "Unblended cost of the last full month before the period end.", "money",
               better="down", total=True),
    MetricSpec("aws.month_to_date_cost", "Unblended cost from the first of the period end's month through "
               "the period end.", "money"),
    MetricSpec("aws.ses_quota", "SES sending quota per region (rows: region, max_24_hour_send, max_send_rate, "
               "sent_last_24_hours).", "table"),
    MetricSpec("aws.lambda_performance", "Each Lambda function over the report period, from CloudWatch (rows: "
               "name, region, invocations, errors, throttles = sums; p95_duration_ms = 95th percentile of "
               "Duration, empty when it did not run).", "table"),
    MetricSpec("aws.api_performance", "Each API Gateway API over the report period, from CloudWatch (rows: name, "
               "id, kind, region, requests = Count, server_errors = 5XX, client_errors = 4XX, p95_latency_ms = "
               "95th percentile of Latency, empty when it had no requests).", "table"),
    MetricSpec("aws.lambda_error_lines", "Most recent error lines of each Lambda function's CloudWatch log group in "
               "the report period, at most log_lines_per_function each, secrets redacted (rows: function, "
               "region, time, message = the line, summary = the error's name or opening words, without identifiers or "
               "paths).", "list"),
    MetricSpec("aws.lambda_error_scan_cut_short", "Lambda functions whose error-line scan stopped at its page "
               "budget before the newest lines of the period were certain (rows: function, region): their "
               "aws.lambda_error_lines may leave out newer errors, and none listed does not mean none logged.",
               "list"),
    MetricSpec("aws.code_repositories", "The tenant's code repositories the source is set to read (rows: name, "
               "path, pipeline = the CI/CD system configured in the repository or empty when none, "
               "secrets = potential hardcoded secrets found).", "table"),
    MetricSpec("aws.service_errors", "AWS services that could not be read, and why (rows: service, reason). "
               "Their metrics are unavailable; the others are complete.", "list"),
    *briefing.METRICS,
]

# Which services each metric is computed from: any of them failing makes the metric unavailable,
# because a partial list would read as a complete one.
DEPENDS_ON = {
    "aws.account_id": ("STS",),
    "aws.lambda_functions": ("Lambda",),
    "aws.s3_buckets": ("S3",),
    "aws.dynamodb_tables": ("DynamoDB",),
    "aws.cloudfront_distributions": ("CloudFront",),
    "aws.route53_zones": ("Route 53",),
    "aws.route53_records": ("Route 53",),
    "aws.api_endpoints": ("API Gateway",),
    "aws.stacks_by_domain": ("Route 53", "CloudFront"),
    "aws.security_findings": ("Lambda", "S3", "DynamoDB", "CloudFront", "API Gateway", "EC2 security groups",
                              "code repositories"),
    "aws.monthly_cost_by_service": ("Cost Explorer",),
    "aws.monthly_cost_total": ("Cost Explorer",),
    "aws.last_month_cost": ("Cost Explorer",),
    "aws.month_to_date_cost": ("Cost Explorer",),
    "aws.ses_quota": ("SES",),
    "aws.lambda_performance": ("Lambda", "CloudWatch"),
    "aws.api_performance": ("API Gateway", "CloudWatch"),
    "aws.lambda_error_lines": ("Lambda", "CloudWatch Logs"),
    "aws.lambda_error_scan_cut_short": ("Lambda", "CloudWatch Logs"),
    "aws.code_repositories": ("code repositories",),
}
DEPENDS_ON["aws.security_finding_counts"] = DEPENDS_ON["aws.security_findings"]

# Route 53 Domains (the CFO's domain renewals), kept as its own block.
METRICS.append(MetricSpec(
    "aws.domain_registrations", "Domains registered with Route 53 Domains (rows: domain, expires, auto_renew, "
    "renewal_price = the TLD's yearly renewal price in USD from ListPrices, null when not listed), soonest expiry "
    "first.", "table"))
DEPENDS_ON["aws.domain_registrations"] = ("Route 53 Domains",)


@REGISTRY.register("aws", "Amazon Web Services: inventory, security findings, latency and errors, cost and SES "
                   "quota (boto3).",
                   METRICS)
def gather_aws(raw_settings: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    settings = parse_settings(raw_settings, context.tenant_id)
    if settings.snapshot:
        values = read_snapshot(context.resolve(settings.snapshot), context.tenant_id)
    else:
        values = gather_live(settings, context)
    return {**values, **briefing_figures(values, context.tenant_id)}


def gather_live(settings: AwsSettings, context: SourceContext, now: dt.datetime | None = None) -> dict[str, Any]:
    from sources.aws import cloudwatch, live
    from sources.aws.clients import Clients, guarded
    from sources.aws.repositories import pipeline_of, scan_repository

    clients = Clients(settings)
    errors: dict[str, str] = {}
    months = full_months_before(context.period_end, settings.cost_months)
    readers = {
        "STS": lambda: live.collect_account(clients),
        "Lambda": lambda: live.collect_lambda(clients),
        "S3": lambda: live.collect_s3(clients),
        "DynamoDB": lambda: live.collect_dynamodb(clients),
        "CloudFront": lambda: live.collect_cloudfront(clients),
        "Route 53": lambda: live.collect_route53(clients),
        "API Gateway": lambda: live.collect_apis(clients),
        "EC2 security groups": lambda: live.collect_security_groups(clients),
        "Cost Explorer": lambda: live.collect_costs(clients, months, context.period_end),
        "SES": lambda: live.collect_ses(clients),
        "Route 53 Domains": lambda: live.collect_domain_registrations(clients),
        "code repositories": lambda: [
            {"path": path, "secrets": scan_repository(context.resolve(path)),
             "pipeline": pipeline_of(context.resolve(path))} for path in settings.repositories
        ],
    }
    inventory = {service: guarded(service, read, errors, settings.tenant_id)
                 for service, read in readers.items()}
    # Activity is read for the functions and APIs just listed; when a list failed, its metrics are
    # unavailable through DEPENDS_ON and the other list is still read.
    start, end = cloudwatch.period_window(context.period_start, context.period_end)
    functions, apis = inventory["Lambda"] or [], inventory["API Gateway"] or []
    inventory["CloudWatch"] = guarded(
        "CloudWatch", lambda: cloudwatch.collect_performance(clients, functions, apis, start, end), errors,
        settings.tenant_id)
    inventory["CloudWatch Logs"] = guarded(
        "CloudWatch Logs", lambda: cloudwatch.collect_error_lines(clients, functions, start, end), errors,
        settings.tenant_id)
    gathered_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
    metrics = build_metrics(inventory, errors, context, gathered_at)
    return decode_metrics(encode_metrics(metrics))


def build_metrics(inventory: dict[str, Any], errors: dict[str, str], context: SourceContext,
                  gathered_at: str) -> dict[str, Any]:
    tenant = context.tenant_id
    values: dict[str, Any] = {
        "aws.gathered_at": gathered_at,
        "aws.service_errors": [{"service": s, "reason": r} for s, r in sorted(errors.items())],
    }
    for metric, services in DEPENDS_ON.items():
        failed = [s for s in services if s in errors]
        if failed:
            values[metric] = Unavailable(metric, "; ".join(f"AWS {s} could not be read: {errors[s]}" for s in failed))
    inv = inventory

    def put(metric: str, compute) -> None:
        if metric not in values:
            values[metric] = compute()

    put("aws.account_id", lambda: inv["STS"])
    put("aws.lambda_functions", lambda: [
        {k: f[k] for k in ("name", "region", "runtime", "memory_mb", "last_modified", "deprecated_runtime")}
        for f in inv["Lambda"]])
    put("aws.s3_buckets", lambda: list(inv["S3"]))
    put("aws.dynamodb_tables", lambda: list(inv["DynamoDB"]))
    put("aws.cloudfront_distributions", lambda: [
        {"id": d["id"], "domain_name": d["domain_name"], "aliases": ", ".join(d["aliases"]),
         "origins": ", ".join(o["domain"] for o in d["origins"]), "web_acl": d["web_acl"]}
        for d in inv["CloudFront"]])
    put("aws.route53_zones", lambda: [
        {"name": z["name"], "id": z["id"], "private": z["private"], "record_count": len(z["records"])}
        for z in inv["Route 53"]])
    put("aws.route53_records", lambda: [
        {"zone": z["name"], "name": r["name"], "type": r["type"], "target": ", ".join(r["targets"])}
        for z in inv["Route 53"] for r in z["records"] if r["type"] in ADDRESS_RECORDS])
    put("aws.api_endpoints", lambda: [
        {**{k: a[k] for k in ("name", "id", "kind", "region", "routes")}, "open_routes": ", ".join(a["open_routes"])}
        for a in inv["API Gateway"]])
    put("aws.stacks_by_domain", lambda: stacks_by_domain(inv["Route 53"], inv["CloudFront"],
                                                         context.tenant_settings.get("domains") or []))
    if "aws.security_findings" not in values:
        found = sort_findings(
            s3_findings(inv["S3"], tenant) + cloudfront_findings(inv["CloudFront"], tenant)
            + api_findings(inv["API Gateway"], tenant) + security_group_findings(inv["EC2 security groups"], tenant)
            + lambda_findings(inv["Lambda"], tenant) + dynamodb_findings(inv["DynamoDB"], tenant)
            + repository_findings(inv["code repositories"], tenant))
        values["aws.security_findings"] = found
        values["aws.security_finding_counts"] = count_by_severity(found)
    if "aws.monthly_cost_by_service" not in values:
        values.update(cost_metrics(inv["Cost Explorer"]))
    put("aws.ses_quota", lambda: list(inv["SES"]))
    put("aws.domain_registrations", lambda: list(inv["Route 53 Domains"]))
    put("aws.lambda_performance", lambda: list(inv["CloudWatch"]["functions"]))
    put("aws.api_performance", lambda: list(inv["CloudWatch"]["apis"]))
    put("aws.lambda_error_lines", lambda: list(inv["CloudWatch Logs"]["lines"]))
    put("aws.lambda_error_scan_cut_short", lambda: list(inv["CloudWatch Logs"]["cut_short"]))
    put("aws.code_repositories", lambda: [
        {"name": Path(r["path"]).name, "path": r["path"], "pipeline": r["pipeline"], "secrets": len(r["secrets"])}
        for r in inv["code repositories"]])
    return values


ADDRESS_RECORDS = ("A", "AAAA", "CNAME")


def origin_kind(domain: str) -> str:
    if ".s3." in f".{domain}" or ".s3-website" in domain or domain.endswith(".s3.amazonaws.com"):
        return "S3"
    if ".execute-api." in domain:
        return "API Gateway"
    if ".lambda-url." in domain:
        return "Lambda"
    return "custom"


def stacks_by_domain(zones: list[dict[str, Any]], distributions: list[dict[str, Any]],
                     domains: list[str]) -> list[dict[str, Any]]:
    """Each address record under the tenant's domains, followed to CloudFront and on to its origin."""
    by_hostname = {d["domain_name"]: d for d in distributions}
    wanted = [d.lower().rstrip(".") for d in domains]
    rows = []
    for zone in zones:
        for record in zone["records"]:
            name = record["name"]
            if record["type"] not in ADDRESS_RECORDS:
                continue
            if wanted and not any(name == d or name.endswith("." + d) for d in wanted):
                continue
            for target in record["targets"]:
                distribution = by_hostname.get(target)
                if distribution is None:
                    rows.append({"domain": name, "record": record["type"], "distribution": None,
                                 "origin": target, "origin_kind": origin_kind(target)})
                    continue
                for origin in distribution["origins"]:
                    rows.append({"domain": name, "record": record["type"], "distribution": distribution["id"],
                                 "origin": origin["domain"], "origin_kind": origin_kind(origin["domain"])})
    # An A and an AAAA alias to the same distribution describe one stack.
    unique = {(r["domain"], r["distribution"], r["origin"]): r for r in rows}
    return sorted(unique.values(), key=lambda r: (r["domain"], r["distribution"] or "", r["origin"]))


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def cost_metrics(costs: dict[str, Any]) -> dict[str, Any]:
    """Per-service amounts are rounded to cents first and totals add those, so every table adds up."""
    rows = [{"month": r["month"], "service": r["service"], "amount": _cents(Decimal(r["amount"]))}
            for r in costs["by_service"]]
    rows = [r for r in rows if r["amount"] != 0]
    totals = {month: sum((r["amount"] for r in rows if r["month"] == month), Decimal(0)) for month in costs["months"]}
    by_service = sorted(rows, key=lambda r: (r["month"], -r["amount"], r["service"]))
    return {
        "aws.monthly_cost_by_service": [{**r, "amount": float(r["amount"])} for r in by_service],
        "aws.monthly_cost_total": [{"month": m, "amount": float(a)} for m, a in totals.items()],
        "aws.last_month_cost": float(totals[costs["months"][-1]]),
        "aws.month_to_date_cost": float(_cents(Decimal(costs["month_to_date"]))),
    }


# ---- snapshots -----------------------------------------------------------------------------------


def encode_metrics(values: Mapping[str, Any]) -> dict[str, Any]:
    encoded = {}
    for name, value in values.items():
        encoded[name] = {_UNAVAILABLE: value.reason} if isinstance(value, Unavailable) else value
    # Round-trip through JSON so live values have exactly the types a snapshot gives back.
    return json.loads(json.dumps(encoded, allow_nan=False))


def decode_metrics(encoded: Mapping[str, Any]) -> dict[str, Any]:
    return {name: Unavailable(name, value[_UNAVAILABLE]) if isinstance(value, dict) and _UNAVAILABLE in value
            else value for name, value in encoded.items()}


def snapshot_document(values: Mapping[str, Any], tenant_id: str, period_end: dt.date) -> dict[str, Any]:
    return {"format": SNAPSHOT_FORMAT, "tenant": tenant_id, "period_end": period_end.isoformat(),
            "metrics": encode_metrics(values)}


def write_snapshot(path: Path, values: Mapping[str, Any], tenant_id: str, period_end: dt.date) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(snapshot_document(values, tenant_id, period_end), indent=2, sort_keys=True)
    path.write_text(text + "\n", encoding="utf-8")


def read_snapshot(path: Path, tenant_id: str) -> dict[str, Any]:
    if not path.is_file():
        raise SourceError(f"tenant '{tenant_id}': sources.aws.snapshot: file not found: {path}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(document, dict) or document.get("format") != SNAPSHOT_FORMAT:
        raise SourceError(f"{path}: not an AWS snapshot (expected \"format\": \"{SNAPSHOT_FORMAT}\"); "
                          "write one with `exec-reports snapshot aws --tenant T -o FILE`")
    if document.get("tenant") != tenant_id:
        # A snapshot of another tenant would put its resources in this tenant's reports.
        raise SourceError(f"{path}: snapshot is of tenant '{document.get('tenant')}', not '{tenant_id}'")
    metrics = document.get("metrics")
    if not isinstance(metrics, dict):
        raise SourceError(f"{path}: \"metrics\" must be an object of metric name to value")
    unknown = sorted(set(metrics) - {spec.name for spec in METRICS})
    if unknown:
        raise SourceError(f"{path}: unknown metric(s) {', '.join(unknown)}")
    return decode_metrics(metrics)


def snapshot_live(raw_settings: Mapping[str, Any], context: SourceContext, output: Path) -> list[str]:
    """``exec-reports snapshot aws``: the tenant's live AWS figures written as a snapshot file, always
    from live AWS even for a tenant that currently reads a snapshot. Returns one warning per service
    that failed (its figures are unavailable in the file)."""
    settings = parse_settings({k: v for k, v in raw_settings.items() if k != "snapshot"}, context.tenant_id)
    values = gather_live(settings, context)
    write_snapshot(output, values, context.tenant_id, context.period_end)
    return [f"{error['service']}: {error['reason']}" for error in values["aws.service_errors"]]


REGISTRY.add_snapshotter("aws", snapshot_live)
