"""The per-tenant ``sources.aws`` settings, checked before any call so a typo fails with its key named."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sources.errors import SourceError
from sources.registry import reject_unknown_keys

KNOWN_KEYS = {
    "regions": "AWS regions to read regional services from (default: [us-east-1])",
    "profile": "named profile from ~/.aws/config",
    "role_arn": "IAM role to assume (after the profile, block or default chain)",
    "external_id": "ExternalId for the role, when the role's trust policy requires one",
    "credentials_block": "name of a prefect-aws AwsCredentials block",
    "tags": "mapping tag key -> value; only resources carrying all of them belong to the tenant",
    "repositories": "local folders of the tenant's code to scan for hardcoded secrets",
    "cost_months": "how many full months of Cost Explorer history to report (default 3)",
    "snapshot": "JSON file written by `exec-reports snapshot aws` to read instead of live AWS",
    "endpoint_url": "one endpoint for every AWS client (moto or another local stand-in)",
    "log_lines_per_function": "most recent error lines to keep per Lambda function from CloudWatch Logs "
                              "(default 3, 0 to read none)",
}

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")


@dataclass(frozen=True)
class AwsSettings:
    tenant_id: str
    regions: tuple[str, ...] = ("us-east-1",)
    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    credentials_block: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    repositories: tuple[str, ...] = ()
    cost_months: int = 3
    snapshot: str | None = None
    endpoint_url: str | None = None
    log_lines_per_function: int = 3


def parse_settings(raw: Mapping[str, Any], tenant_id: str) -> AwsSettings:
    where = f"tenant '{tenant_id}': sources.aws"
    reject_unknown_keys(raw, KNOWN_KEYS, where)

    def text(key: str) -> str | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise SourceError(f"{where}.{key}: expected a non-empty string, got {value!r}")
        return value.strip()

    regions = raw.get("regions", ["us-east-1"])
    if isinstance(regions, str):
        regions = [regions]
    if not isinstance(regions, list) or not regions:
        raise SourceError(f"{where}.regions: expected a list of region names like [us-east-1], got {regions!r}")
    for region in regions:
        if not isinstance(region, str) or not _REGION.match(region):
            raise SourceError(f"{where}.regions: {region!r} is not a region name like 'us-east-1'")

    profile, block = text("profile"), text("credentials_block")
    if profile and block:
        raise SourceError(f"{where}: set either profile or credentials_block, not both")
    role_arn = text("role_arn")
    if role_arn and not _ROLE.match(role_arn):
        raise SourceError(f"{where}.role_arn: {role_arn!r} is not an IAM role ARN "
                          "(arn:aws:iam::123456789012:role/NAME)")

    tags = raw.get("tags") or {}
    if not isinstance(tags, Mapping) or not all(isinstance(k, str) and isinstance(v, str | int)
                                                 for k, v in tags.items()):
        raise SourceError(f"{where}.tags: expected a mapping of tag key to value, like {{tenant: jada}}")

    repositories = raw.get("repositories") or []
    if isinstance(repositories, str):
        repositories = [repositories]
    if not isinstance(repositories, list) or not all(isinstance(r, str) for r in repositories):
        raise SourceError(f"{where}.repositories: expected a list of folder paths")

    cost_months = raw.get("cost_months", 3)
    if not isinstance(cost_months, int) or isinstance(cost_months, bool) or not 1 <= cost_months <= 12:
        raise SourceError(f"{where}.cost_months: expected a whole number from 1 to 12, got {cost_months!r}")

    log_lines = raw.get("log_lines_per_function", 3)
    if not isinstance(log_lines, int) or isinstance(log_lines, bool) or not 0 <= log_lines <= 50:
        raise SourceError(f"{where}.log_lines_per_function: expected a whole number from 0 to 50, got {log_lines!r}")

    return AwsSettings(
        tenant_id=tenant_id,
        regions=tuple(dict.fromkeys(regions)),
        profile=profile,
        role_arn=role_arn,
        external_id=text("external_id"),
        credentials_block=block,
        tags={k: str(v) for k, v in tags.items()},
        repositories=tuple(repositories),
        cost_months=cost_months,
        snapshot=text("snapshot"),
        endpoint_url=text("endpoint_url"),
        log_lines_per_function=log_lines,
    )
