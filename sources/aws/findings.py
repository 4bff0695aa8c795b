"""Security findings from a tenant's inventory. Pure functions: they see names and flags, never secrets."""

from __future__ import annotations

from typing import Any

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")

# Every kind of finding this source can raise, so reports and tests can enumerate them.
FINDING_KINDS = (
    "s3-no-public-access-block",
    "s3-public-bucket-policy",
    "cloudfront-no-waf",
    "api-route-without-authorization",
    "security-group-open-to-internet",
    "lambda-plaintext-secret",
    "lambda-deprecated-runtime",
    "repository-hardcoded-secret",
    "dynamodb-no-point-in-time-recovery",
)


def finding(severity: str, kind: str, resource: str, tenant: str, problem: str, fix: str) -> dict[str, str]:
    return {"severity": severity, "kind": kind, "resource": resource, "tenant": tenant, "problem": problem,
            "fix": fix}


def s3_findings(buckets: list[dict[str, Any]], tenant: str) -> list[dict[str, str]]:
    found = []
    for bucket in buckets:
        resource = f"s3://{bucket['name']}"
        if bucket["public_access_block"] != "full":
            state = "has no public access block" if bucket["public_access_block"] == "missing" else \
                "has a public access block with some of its four settings off"
            found.append(finding(
                "high", "s3-no-public-access-block", resource, tenant,
                f"Bucket {bucket['name']} {state}, so an ACL or policy change can make it public.",
                "Turn on all four Block Public Access settings for the bucket (or for the account) and serve "
                "public content through CloudFront with origin access control."))
        if bucket["public_policy"] == "unconditional":
            found.append(finding(
                "critical", "s3-public-bucket-policy", resource, tenant,
                f"The policy of bucket {bucket['name']} allows Principal \"*\" with no condition: anyone on "
                "the internet has the granted actions.",
                "Remove the \"*\" statement; grant access to the CloudFront distribution's service principal "
                "with an aws:SourceArn condition instead."))
        elif bucket["public_policy"] == "conditional":
            found.append(finding(
                "medium", "s3-public-bucket-policy", resource, tenant,
                f"The policy of bucket {bucket['name']} allows Principal \"*\", narrowed only by a condition.",
                "Check that the condition really limits access (VPC endpoint, source ARN); prefer naming the "
                "principal."))
    return found


def cloudfront_findings(distributions: list[dict[str, Any]], tenant: str) -> list[dict[str, str]]:
    return [
        finding("medium", "cloudfront-no-waf", f"cloudfront:{d['id']}", tenant,
                f"Distribution {d['id']} ({', '.join(d['aliases']) or d['domain_name']}) has no AWS WAF web ACL.",
                "Attach a WAF web ACL with the AWS managed core rule set and a rate-based rule.")
        for d in distributions if not d["web_acl"]
    ]


def api_findings(apis: list[dict[str, Any]], tenant: str) -> list[dict[str, str]]:
    found = []
    for api in apis:
        for route in api["open_routes"]:
            what = "method has authorization type NONE" if api["kind"] == "REST" else "route has no authorizer"
            found.append(finding(
                "high", "api-route-without-authorization", f"{api['kind'].lower()}-api:{api['id']} {route}",
                tenant, f"{api['kind']} API {api['name']} ({api['region']}): {route} {what}; anyone can call it.",
                "Add an authorizer (JWT/Cognito, Lambda or IAM) to the route, or document why it is public."))
    return found


def security_group_findings(groups: list[dict[str, Any]], tenant: str) -> list[dict[str, str]]:
    found = []
    for group in groups:
        for rule in group["open_rules"]:
            found.append(finding(
                "high", "security-group-open-to-internet", f"{group['region']}:{group['id']}", tenant,
                f"Security group {group['id']} ({group['name']}) allows {rule['ports']} from {rule['source']}.",
                "Limit the rule to known addresses, or reach the instance through SSM Session Manager or a VPN."))
    return found


def lambda_findings(functions: list[dict[str, Any]], tenant: str) -> list[dict[str, str]]:
    found = []
    for function in functions:
        resource = f"lambda:{function['region']}:{function['name']}"
        for variable in function["secret_env"]:
            found.append(finding(
                "high", "lambda-plaintext-secret", f"{resource} env {variable['name']}", tenant,
                f"Environment variable {variable['name']} of function {function['name']}: {variable['why']} "
                "(value not shown).",
                "Move the value to AWS Secrets Manager or SSM Parameter Store, read it at start-up, rotate it, "
                "and keep only its ARN in the environment."))
        if function["deprecated_runtime"]:
            found.append(finding(
                "medium", "lambda-deprecated-runtime", resource, tenant,
                f"Function {function['name']} runs on {function['runtime']}, which AWS has deprecated: it gets "
                "no security patches.",
                "Upgrade to a supported runtime version and redeploy."))
    return found


def dynamodb_findings(tables: list[dict[str, Any]], tenant: str) -> list[dict[str, str]]:
    return [
        finding("medium", "dynamodb-no-point-in-time-recovery", f"dynamodb:{t['region']}:{t['name']}", tenant,
                f"Table {t['name']} has point-in-time recovery off: a bad write or delete cannot be rolled back.",
                "Turn on point-in-time recovery for the table.")
        for t in tables if not t["point_in_time_recovery"]
    ]


def repository_findings(repositories: list[dict[str, Any]], tenant: str) -> list[dict[str, str]]:
    return [
        finding("critical", "repository-hardcoded-secret", f"{repo['path']}/{hit['file']}:{hit['line']}", tenant,
                f"{hit['type']} committed in {hit['file']} line {hit['line']} (value not shown).",
                "Revoke and rotate the credential now, remove it from the code and its history, and load it "
                "from Secrets Manager at run time.")
        for repo in repositories for hit in repo["secrets"]
    ]


def sort_findings(found: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(found, key=lambda f: (SEVERITY_ORDER.index(f["severity"]), f["kind"], f["resource"]))


def count_by_severity(found: list[dict[str, str]]) -> dict[str, int]:
    return {severity: sum(1 for f in found if f["severity"] == severity) for severity in SEVERITY_ORDER}
