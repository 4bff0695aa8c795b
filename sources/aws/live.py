"""Reading one tenant's AWS resources through boto3.

Each ``collect_*`` function reads one service and returns plain JSON-ready data. A service that
fails (AccessDenied, throttled past the retries, unreachable) is recorded with its reason and the
others carry on. Secret values never leave this module: Lambda environment variables are judged
where they are read and only their names travel on.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from decimal import Decimal
from typing import Any

from sources.aws.clients import (
    Clients,
    ServiceFailure,
    client_error_code,
    iso_timestamp,
    matches_tags,
    tag_list,
)

log = logging.getLogger("exec_reports.sources.aws")

# Lambda runtimes past their AWS deprecation date (AWS Lambda "Runtime deprecation policy" table;
# review when AWS announces the next batch). Blocked runtimes are included: they are worse.
DEPRECATED_RUNTIMES = frozenset({
    "python2.7", "python3.6", "python3.7", "python3.8", "python3.9",
    "nodejs", "nodejs4.3", "nodejs4.3-edge", "nodejs6.10", "nodejs8.10", "nodejs10.x", "nodejs12.x",
    "nodejs14.x", "nodejs16.x", "nodejs18.x",
    "java8", "dotnetcore1.0", "dotnetcore2.0", "dotnetcore2.1", "dotnetcore3.1", "dotnet5.0", "dotnet6",
    "ruby2.5", "ruby2.7", "go1.x", "provided",
})

_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE_?KEY|CREDENTIAL|API_?KEY|ACCESS_?KEY|(^|_)KEY($|_)",
                          re.IGNORECASE)
_AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
# A variable that names where a secret lives (an ARN, an SSM path, a resolve reference) is the
# recommended practice, not a leak.
_REFERENCE = re.compile(r"^(arn:aws[a-z-]*:(secretsmanager|ssm|kms):|\{\{resolve:|/)")

PUBLIC_CIDRS = ("0.0.0.0/0", "::/0")
WEB_PORTS = frozenset({80, 443})


def judge_environment(variables: dict[str, str]) -> list[dict[str, str]]:
    """Names of variables that look like plaintext secrets, with why. The values are dropped here."""
    flagged = []
    for name in sorted(variables):
        value = variables[name] or ""
        if _AWS_KEY_ID.search(value):
            flagged.append({"name": name, "why": "its value looks like an AWS access key id"})
        elif _SECRET_NAME.search(name) and value and not _REFERENCE.match(value):
            flagged.append({"name": name, "why": "its name says it holds a secret and its value is plaintext"})
    return flagged


# ---- collectors, one per service ---------------------------------------------------------------


def collect_account(clients: Clients) -> str:
    return clients.client("sts", clients.settings.regions[0]).get_caller_identity()["Account"]


def collect_lambda(clients: Clients) -> list[dict[str, Any]]:
    functions = []
    for region in clients.settings.regions:
        client = clients.client("lambda", region)
        for page in client.get_paginator("list_functions").paginate():
            for function in page["Functions"]:
                if clients.settings.tags:
                    tags = client.list_tags(Resource=function["FunctionArn"]).get("Tags", {})
                    if not matches_tags(tags, clients.settings.tags):
                        continue
                variables = (function.get("Environment") or {}).get("Variables") or {}
                runtime = function.get("Runtime")
                functions.append({
                    "name": function["FunctionName"],
                    "region": region,
                    "runtime": runtime or "container image",
                    "memory_mb": function.get("MemorySize"),
                    "last_modified": iso_timestamp(function.get("LastModified")),
                    "deprecated_runtime": runtime in DEPRECATED_RUNTIMES,
                    "secret_env": judge_environment(variables),
                })
    return sorted(functions, key=lambda f: (f["name"], f["region"]))


def collect_s3(clients: Clients) -> list[dict[str, Any]]:
    from botocore.exceptions import ClientError

    client = clients.client("s3", clients.settings.regions[0])
    buckets = []
    # ListBuckets became paginated in 2024; older botocore answers everything in one call.
    pages = client.get_paginator("list_buckets").paginate() if client.can_paginate("list_buckets") \
        else [client.list_buckets()]
    for page in pages:
        for bucket in page.get("Buckets", []):
            name = bucket["Name"]
            if clients.settings.tags:
                try:
                    tags = tag_list(client.get_bucket_tagging(Bucket=name).get("TagSet"))
                except ClientError as exc:
                    if client_error_code(exc) != "NoSuchTagSet":
                        raise
                    tags = {}
                if not matches_tags(tags, clients.settings.tags):
                    continue
            region = client.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
            try:
                block = client.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
                flags = [block.get(k, False) for k in ("BlockPublicAcls", "IgnorePublicAcls",
                                                       "BlockPublicPolicy", "RestrictPublicBuckets")]
                access_block = "full" if all(flags) else "partial"
            except ClientError as exc:
                if client_error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
                    raise
                access_block = "missing"
            try:
                policy = json.loads(client.get_bucket_policy(Bucket=name)["Policy"])
            except ClientError as exc:
                if client_error_code(exc) != "NoSuchBucketPolicy":
                    raise
                policy = None
            # AWS's own verdict on the policy (GetBucketPolicyStatus) as well as ours: AWS knows which
            # conditions really narrow a "*" grant; ours says how the grant is written.
            policy_public = False
            if policy is not None:
                status = client.get_bucket_policy_status(Bucket=name).get("PolicyStatus") or {}
                policy_public = bool(status.get("IsPublic", False))
            buckets.append({"name": name, "region": region, "public_access_block": access_block,
                            "public_policy": public_policy_grant(policy), "policy_public": policy_public})
    return sorted(buckets, key=lambda b: b["name"])


def public_policy_grant(policy: dict[str, Any] | None) -> str:
    """'unconditional' when a statement allows Principal '*' outright, 'conditional' when a condition
    narrows it, 'none' otherwise."""
    if not policy:
        return "none"
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    found = "none"
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if isinstance(principal, dict):
            principal = principal.get("AWS")
        principals = principal if isinstance(principal, list) else [principal]
        if "*" in principals:
            if not statement.get("Condition"):
                return "unconditional"
            found = "conditional"
    return found


def collect_dynamodb(clients: Clients) -> list[dict[str, Any]]:
    tables = []
    for region in clients.settings.regions:
        client = clients.client("dynamodb", region)
        for page in client.get_paginator("list_tables").paginate():
            for name in page["TableNames"]:
                if clients.settings.tags:
                    arn = client.describe_table(TableName=name)["Table"]["TableArn"]
                    tags: dict[str, str] = {}
                    for tag_page in client.get_paginator("list_tags_of_resource").paginate(ResourceArn=arn):
                        tags.update(tag_list(tag_page.get("Tags")))
                    if not matches_tags(tags, clients.settings.tags):
                        continue
                backups = client.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
                status = (backups.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus")
                tables.append({"name": name, "region": region, "point_in_time_recovery": status == "ENABLED"})
    return sorted(tables, key=lambda t: (t["name"], t["region"]))


def collect_cloudfront(clients: Clients) -> list[dict[str, Any]]:
    client = clients.client("cloudfront")
    distributions = []
    for page in client.get_paginator("list_distributions").paginate():
        for item in (page.get("DistributionList") or {}).get("Items") or []:
            if clients.settings.tags:
                tags = tag_list(client.list_tags_for_resource(Resource=item["ARN"])["Tags"].get("Items"))
                if not matches_tags(tags, clients.settings.tags):
                    continue
            origins = [{"id": o["Id"], "domain": o["DomainName"].lower()}
                       for o in (item.get("Origins") or {}).get("Items") or []]
            default_origin_id = (item.get("DefaultCacheBehavior") or {}).get("TargetOriginId")
            distributions.append({
                "id": item["Id"],
                "domain_name": item["DomainName"].lower().rstrip("."),
                "aliases": sorted(a.lower() for a in (item.get("Aliases") or {}).get("Items") or []),
                "origins": origins,
                "default_origin": next((o["domain"] for o in origins if o["id"] == default_origin_id),
                                       origins[0]["domain"] if origins else None),
                "web_acl": bool(item.get("WebACLId")),
                "enabled": bool(item.get("Enabled", True)),
            })
    return sorted(distributions, key=lambda d: d["id"])


def collect_route53(clients: Clients) -> list[dict[str, Any]]:
    client = clients.client("route53")
    zones = []
    for page in client.get_paginator("list_hosted_zones").paginate():
        for zone in page["HostedZones"]:
            zone_id = zone["Id"].split("/")[-1]
            if clients.settings.tags:
                tag_set = client.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)
                if not matches_tags(tag_list(tag_set["ResourceTagSet"].get("Tags")), clients.settings.tags):
                    continue
            records = []
            for record_page in client.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
                for record in record_page["ResourceRecordSets"]:
                    alias = record.get("AliasTarget")
                    targets = ([alias["DNSName"]] if alias else
                               [r["Value"] for r in record.get("ResourceRecords") or []])
                    records.append({"name": record["Name"].lower().rstrip("."), "type": record["Type"],
                                    "alias": bool(alias),
                                    "targets": [t.lower().rstrip(".") for t in targets]})
            zones.append({"id": zone_id, "name": zone["Name"].lower().rstrip("."),
                          "private": bool((zone.get("Config") or {}).get("PrivateZone")), "records": records})
    return sorted(zones, key=lambda z: (z["name"], z["id"]))


def collect_apis(clients: Clients) -> list[dict[str, Any]]:
    apis = []
    for region in clients.settings.regions:
        rest = clients.client("apigateway", region)
        for page in rest.get_paginator("get_rest_apis").paginate():
            for api in page.get("items", []):
                if clients.settings.tags and not matches_tags(api.get("tags") or {}, clients.settings.tags):
                    continue
                routes, open_routes = 0, []
                for resource_page in rest.get_paginator("get_resources").paginate(restApiId=api["id"]):
                    for resource in resource_page.get("items", []):
                        for method in sorted(resource.get("resourceMethods") or {}):
                            if method == "OPTIONS":  # CORS preflight is anonymous by design
                                continue
                            routes += 1
                            detail = rest.get_method(restApiId=api["id"], resourceId=resource["id"],
                                                     httpMethod=method)
                            if detail.get("authorizationType", "NONE") == "NONE":
                                open_routes.append(f"{method} {resource['path']}")
                apis.append({"id": api["id"], "name": api.get("name", ""), "kind": "REST", "region": region,
                             "routes": routes, "open_routes": sorted(open_routes)})
        http = clients.client("apigatewayv2", region)
        for page in http.get_paginator("get_apis").paginate():
            for api in page.get("Items", []):
                if clients.settings.tags and not matches_tags(api.get("Tags") or {}, clients.settings.tags):
                    continue
                routes, open_routes = 0, []
                for route_page in http.get_paginator("get_routes").paginate(ApiId=api["ApiId"]):
                    for route in route_page.get("Items", []):
                        if route["RouteKey"].startswith("OPTIONS "):
                            continue
                        routes += 1
                        if route.get("AuthorizationType", "NONE") == "NONE":
                            open_routes.append(route["RouteKey"])
                apis.append({"id": api["ApiId"], "name": api.get("Name", ""),
                             "kind": api.get("ProtocolType", "HTTP"), "region": region,
                             "routes": routes, "open_routes": sorted(open_routes)})
    return sorted(apis, key=lambda a: (a["name"], a["id"]))


def collect_security_groups(clients: Clients) -> list[dict[str, Any]]:
    groups = []
    filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in clients.settings.tags.items()]
    for region in clients.settings.regions:
        client = clients.client("ec2", region)
        for page in client.get_paginator("describe_security_groups").paginate(Filters=filters):
            for group in page["SecurityGroups"]:
                groups.append({"id": group["GroupId"], "name": group.get("GroupName", ""), "region": region,
                               "open_rules": open_ingress(group.get("IpPermissions") or [])})
    return sorted(groups, key=lambda g: (g["region"], g["id"]))


def open_ingress(permissions: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Ingress rules reachable from the whole internet on anything but plain web ports."""
    found = []
    for permission in permissions:
        cidrs = [r.get("CidrIp") for r in permission.get("IpRanges") or []]
        cidrs += [r.get("CidrIpv6") for r in permission.get("Ipv6Ranges") or []]
        public = [c for c in cidrs if c in PUBLIC_CIDRS]
        if not public:
            continue
        protocol = str(permission.get("IpProtocol", "-1"))
        if protocol == "-1":
            ports = "all traffic"
        else:
            low, high = permission.get("FromPort"), permission.get("ToPort")
            if low is None or high is None or low < 0:
                ports = f"all {protocol}"
            elif set(range(low, high + 1)) <= WEB_PORTS:
                continue
            else:
                ports = f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"
        for cidr in public:
            found.append({"ports": ports, "source": cidr})
    return found


def collect_ses(clients: Clients) -> list[dict[str, Any]]:
    quotas = []
    for region in clients.settings.regions:
        quota = clients.client("ses", region).get_send_quota()
        quotas.append({"region": region,
                       "max_24_hour_send": float(quota.get("Max24HourSend", 0.0)),
                       "max_send_rate": float(quota.get("MaxSendRate", 0.0)),
                       "sent_last_24_hours": float(quota.get("SentLast24Hours", 0.0))})
    return quotas


def collect_costs(clients: Clients, months: list[str], period_end: dt.date) -> dict[str, Any]:
    """Unblended cost by service for each full month, and the month-to-date total up to period_end."""
    client = clients.client("ce", "us-east-1")
    base: dict[str, Any] = {"Granularity": "MONTHLY", "Metrics": ["UnblendedCost"]}
    if clients.settings.tags:
        # Cost allocation tags must be activated in the payer account for this filter to see costs.
        tag_filters = [{"Tags": {"Key": k, "Values": [v], "MatchOptions": ["EQUALS"]}}
                       for k, v in clients.settings.tags.items()]
        base["Filter"] = tag_filters[0] if len(tag_filters) == 1 else {"And": tag_filters}
    first = dt.date.fromisoformat(months[0] + "-01")
    after_last = _next_month(dt.date.fromisoformat(months[-1] + "-01"))
    by_service: dict[tuple[str, str], Decimal] = {}
    units: set[str] = set()
    answered: set[str] = set()
    for result in _cost_pages(client, {**base, "TimePeriod": {"Start": first.isoformat(), "End": after_last.isoformat()},
                                       "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}]}):
        month = result["TimePeriod"]["Start"][:7]
        answered.add(month)
        if month not in months:
            raise ServiceFailure(f"Cost Explorer answered for {month}, outside the months asked for "
                                 f"({months[0]} to {months[-1]})")
        for group in result.get("Groups") or []:
            cost = group["Metrics"]["UnblendedCost"]
            units.add(cost.get("Unit", "USD"))
            key = (month, group["Keys"][0])
            by_service[key] = by_service.get(key, Decimal(0)) + Decimal(cost["Amount"])
    # A month Cost Explorer did not answer for is unknown, not free.
    missing = [m for m in months if m not in answered]
    if missing:
        raise ServiceFailure(f"Cost Explorer returned no figures for {', '.join(missing)}")
    mtd_start = period_end.replace(day=1)
    mtd = Decimal(0)
    mtd_answered = False
    for result in _cost_pages(client, {**base, "TimePeriod": {"Start": mtd_start.isoformat(),
                                                              "End": (period_end + dt.timedelta(days=1)).isoformat()}}):
        mtd_answered = True
        total = (result.get("Total") or {}).get("UnblendedCost")
        if total:
            units.add(total.get("Unit", "USD"))
            mtd += Decimal(total["Amount"])
    if not mtd_answered:
        raise ServiceFailure(f"Cost Explorer returned no month-to-date figure for {mtd_start} to {period_end}")
    if units - {"USD"}:
        raise ServiceFailure(f"Cost Explorer reported costs in {', '.join(sorted(units))}; only USD is supported")
    rows = [{"month": month, "service": service, "amount": str(amount)}
            for (month, service), amount in sorted(by_service.items())]
    return {"months": months, "by_service": rows, "month_to_date": str(mtd),
            "month_to_date_from": mtd_start.isoformat(), "month_to_date_to": period_end.isoformat()}


def _cost_pages(client, arguments: dict[str, Any]):
    token = None
    while True:
        response = client.get_cost_and_usage(**arguments, **({"NextPageToken": token} if token else {}))
        yield from response.get("ResultsByTime", [])
        token = response.get("NextPageToken")
        if not token:
            return


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def collect_domain_registrations(clients: Clients) -> list[dict[str, Any]]:
    """Registered domains with expiry, auto-renew and the TLD's renewal price (Route 53 Domains lives in
    us-east-1 only). One ListPrices call per TLD, not per domain.

    When the tenant is picked out by tags, only domains carrying those tags are its own: tenants sharing
    one account must not each see (and pay a share of) every domain in it."""
    client = clients.client("route53domains", "us-east-1")
    names, marker = [], None
    while True:
        page = client.list_domains(**({"Marker": marker} if marker else {}))
        names += [d["DomainName"] for d in page.get("Domains", [])]
        marker = page.get("NextPageMarker")
        if not marker:
            break
    if clients.settings.tags:
        names = [name for name in names
                 if matches_tags(tag_list(client.list_tags_for_domain(DomainName=name).get("TagList")),
                                 clients.settings.tags)]
    prices: dict[str, float | None] = {}
    rows = []
    for name in names:
        detail = client.get_domain_detail(DomainName=name)
        tld = name.rsplit(".", 1)[-1].lower()
        if tld not in prices:
            listed = client.list_prices(Tld=tld).get("Prices", [])
            renewal = next((p["RenewalPrice"] for p in listed if p.get("Name") == tld and p.get("RenewalPrice")),
                           None)
            # Prices are quoted in USD today; any other currency would be a figure we cannot add up.
            prices[tld] = float(renewal["Price"]) if renewal and renewal.get("Currency") == "USD" else None
        expires = detail.get("ExpirationDate")
        rows.append({"domain": name, "expires": expires.date().isoformat() if expires else None,
                     "auto_renew": bool(detail.get("AutoRenew")), "renewal_price": prices[tld]})
    return sorted(rows, key=lambda r: (r["expires"] or "9999", r["domain"]))
