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
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flows.errors import SourceError
from sources.aws.settings import AwsSettings

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


class ServiceFailure(Exception):
    """One service could not be read; the message is the reason shown in the report."""


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


def iso_timestamp(value: Any) -> str | None:
    """AWS returns datetimes or several string styles; the metrics carry one ISO form in UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = str(value)
        text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)  # Lambda's +0000 -> +00:00
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


# ---- sessions and clients ----------------------------------------------------------------------


class Clients:
    """Creates boto3 clients for one tenant: its credentials, its endpoint, standard retries."""

    def __init__(self, settings: AwsSettings):
        self.settings = settings
        self.session = open_session(settings)

    def client(self, service: str, region: str = "us-east-1"):
        from botocore.config import Config

        # Standard retry mode; the attempt count stays with AWS_MAX_ATTEMPTS / the profile (default 3).
        config = Config(retries={"mode": "standard"}, connect_timeout=10, read_timeout=30,
                        user_agent_extra="exec-reports")
        return self.session.client(service, region_name=region, endpoint_url=self.settings.endpoint_url,
                                   config=config)


def open_session(settings: AwsSettings):
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"tenant '{settings.tenant_id}': sources.aws"
    try:
        if settings.credentials_block:
            session = _session_from_block(settings.credentials_block, where)
        elif settings.profile:
            session = boto3.Session(profile_name=settings.profile)
        else:
            session = boto3.Session()
        if settings.role_arn:
            sts = session.client("sts", region_name=settings.regions[0], endpoint_url=settings.endpoint_url)
            arguments = {"RoleArn": settings.role_arn, "RoleSessionName": f"exec-reports-{settings.tenant_id}"[:64]}
            if settings.external_id:
                arguments["ExternalId"] = settings.external_id
            credentials = sts.assume_role(**arguments)["Credentials"]
            session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                                    aws_secret_access_key=credentials["SecretAccessKey"],
                                    aws_session_token=credentials["SessionToken"])
    except (BotoCoreError, ClientError) as exc:
        # Credential errors name the profile or role, never a key: botocore keeps secrets out of them.
        raise SourceError(f"{where}: could not obtain AWS credentials: {describe_error(exc)}") from None
    return session


def _session_from_block(block_name: str, where: str):
    # prefect-aws is imported only here, and only when a tenant names a block: everything else in
    # the sources stays free of Prefect.
    try:
        from prefect_aws import AwsCredentials
    except ImportError:
        raise SourceError(f"{where}.credentials_block: prefect-aws is not installed") from None
    try:
        block = AwsCredentials.load(block_name)
    except Exception as exc:  # Prefect raises ValueError or HTTP errors depending on the server
        raise SourceError(f"{where}.credentials_block: could not load AwsCredentials block "
                          f"'{block_name}': {type(exc).__name__}") from None
    return block.get_boto3_session()


def describe_error(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code") or f"HTTP {exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode', '?')}"
        message = " ".join(str(error.get("Message", "")).split())[:300]
        return f"{code}: {message}" if message else code
    return f"{type(exc).__name__}: {exc}"


def guarded(service: str, read: Callable[[], Any], errors: dict[str, str], tenant_id: str = "") -> Any:
    """Run one service's reading; on failure record why and return None."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return read()
    except ServiceFailure as exc:
        reason = str(exc)
    except (BotoCoreError, ClientError) as exc:
        reason = describe_error(exc)
    errors[service] = reason
    log.warning("tenant %s: aws %s unavailable: %s", tenant_id, service, reason)
    return None


def _client_error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""


def matches_tags(tags: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(tags.get(key) == value for key, value in wanted.items())


def _tag_list(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {item["Key"]: item["Value"] for item in items or []}


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
                    tags = _tag_list(client.get_bucket_tagging(Bucket=name).get("TagSet"))
                except ClientError as exc:
                    if _client_error_code(exc) != "NoSuchTagSet":
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
                if _client_error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
                    raise
                access_block = "missing"
            try:
                policy = json.loads(client.get_bucket_policy(Bucket=name)["Policy"])
            except ClientError as exc:
                if _client_error_code(exc) != "NoSuchBucketPolicy":
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
                        tags.update(_tag_list(tag_page.get("Tags")))
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
                tags = _tag_list(client.list_tags_for_resource(Resource=item["ARN"])["Tags"].get("Items"))
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
                if not matches_tags(_tag_list(tag_set["ResourceTagSet"].get("Tags")), clients.settings.tags):
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
                 if matches_tags(_tag_list(client.list_tags_for_domain(DomainName=name).get("TagList")),
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


# ---- CloudWatch: latency and errors over the report period ----------------------------------------

# CloudWatch names differ between REST APIs (dimension ApiName, 5XXError/4XXError) and HTTP or
# WebSocket APIs (dimension ApiId, 5xx/4xx).
API_METRICS = {
    "REST": {"dimension": "ApiName", "server_errors": "5XXError", "client_errors": "4XXError"},
    "HTTP": {"dimension": "ApiId", "server_errors": "5xx", "client_errors": "4xx"},
}
# Lines that count as errors. The same words go to CloudWatch as a filter pattern; they are
# checked again here because a pattern the service cannot honour must not let other lines through.
ERROR_PATTERN = '?ERROR ?Error ?Exception ?Traceback ?"Task timed out" ?FATAL ?CRITICAL'
_ERROR_LINE = re.compile(r"ERROR|Error|Exception|Traceback|Task timed out|FATAL|CRITICAL")
_LOG_NOISE = re.compile(r"^\[?(?:ERROR|Error)\]?\s*|\b\d{4}-\d\d-\d\dT[\d:.]+Z?\s*|"
                        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b\s*")
LOG_LINE_CHARS = 240
LOG_PAGES = 10  # per window read, at 100 events a page: bounded for a noisy function
# Pages one function's scan may use beyond one page a day of the period: room to narrow in on the
# newest lines of a few busy days. Past it the scan stops and says so.
LOG_EXTRA_PAGES = 30
LOG_SHORTEST_WINDOW = dt.timedelta(minutes=1)  # a busier minute than LOG_PAGES pages is not split further


def period_window(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The report period as UTC instants: from the first day's midnight to the midnight after the last."""
    return (dt.datetime.combine(start, dt.time(), dt.UTC),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC))


def percentile_client(clients: Clients, region: str):
    """The client p95 statistics are asked from. Its own function so tests can answer these calls
    with botocore's Stubber: moto's GetMetricStatistics ignores ExtendedStatistics."""
    return clients.client("cloudwatch", region)


def _statistic_sum(client, namespace: str, metric: str, dimensions: list[dict[str, str]],
                   start: dt.datetime, end: dt.datetime) -> float:
    answer = client.get_metric_statistics(Namespace=namespace, MetricName=metric, Dimensions=dimensions,
                                          StartTime=start, EndTime=end, Period=_period_seconds(start, end),
                                          Statistics=["Sum"])
    return float(sum(point.get("Sum", 0.0) for point in answer.get("Datapoints", [])))


def _statistic_p95(client, namespace: str, metric: str, dimensions: list[dict[str, str]],
                   start: dt.datetime, end: dt.datetime) -> float | None:
    answer = client.get_metric_statistics(Namespace=namespace, MetricName=metric, Dimensions=dimensions,
                                          StartTime=start, EndTime=end, Period=_period_seconds(start, end),
                                          ExtendedStatistics=["p95"])
    # One period spans the whole window, so one datapoint is the p95 of the window. Should the service
    # split it anyway, the highest is kept: percentiles of parts cannot be combined exactly, and the
    # slower part is the one a reader needs to know about.
    values = [float(point["ExtendedStatistics"]["p95"]) for point in answer.get("Datapoints", [])
              if "p95" in (point.get("ExtendedStatistics") or {})]
    return max(values) if values else None


def _period_seconds(start: dt.datetime, end: dt.datetime) -> int:
    return int((end - start).total_seconds())


def collect_performance(clients: Clients, functions: list[dict[str, Any]], apis: list[dict[str, Any]],
                        start: dt.datetime, end: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    """Per function and per API: counts summed over the window and the window's p95 duration/latency."""
    function_rows = []
    for function in functions:
        region = function["region"]
        counts, percentiles = clients.client("cloudwatch", region), percentile_client(clients, region)
        dimensions = [{"Name": "FunctionName", "Value": function["name"]}]
        row = {"name": function["name"], "region": region}
        for field, metric in (("invocations", "Invocations"), ("errors", "Errors"), ("throttles", "Throttles")):
            row[field] = round(_statistic_sum(counts, "AWS/Lambda", metric, dimensions, start, end))
        p95 = _statistic_p95(percentiles, "AWS/Lambda", "Duration", dimensions, start, end)
        row["p95_duration_ms"] = None if p95 is None else round(p95)
        function_rows.append(row)
    api_rows = []
    for api in apis:
        if api["kind"] == "WEBSOCKET":
            continue  # counts messages and connections, not requests: no figure here would mean the same
        region = api["region"]
        names = API_METRICS["REST" if api["kind"] == "REST" else "HTTP"]
        counts, percentiles = clients.client("cloudwatch", region), percentile_client(clients, region)
        dimensions = [{"Name": names["dimension"], "Value": api["name"] if api["kind"] == "REST" else api["id"]}]
        row = {"name": api["name"], "id": api["id"], "kind": api["kind"], "region": region,
               "requests": round(_statistic_sum(counts, "AWS/ApiGateway", "Count", dimensions, start, end)),
               "server_errors": round(_statistic_sum(counts, "AWS/ApiGateway", names["server_errors"], dimensions,
                                                     start, end)),
               "client_errors": round(_statistic_sum(counts, "AWS/ApiGateway", names["client_errors"], dimensions,
                                                     start, end))}
        p95 = _statistic_p95(percentiles, "AWS/ApiGateway", "Latency", dimensions, start, end)
        row["p95_latency_ms"] = None if p95 is None else round(p95)
        api_rows.append(row)
    return {"functions": function_rows, "apis": api_rows}


def clean_log_line(message: str) -> str:
    """One readable, redacted line: Lambda's level, timestamp and request id dropped, secrets removed."""
    from sources.aws.redact import redact

    text = " ".join(redact(message).split())
    text = " ".join(_LOG_NOISE.sub("", text).split()) or text
    return text if len(text) <= LOG_LINE_CHARS else text[:LOG_LINE_CHARS - 1] + "…"


_ERROR_NAME = re.compile(r"^(?:[\w.]+\.)?(?P<name>[A-Z]\w*(?:Error|Exception|Fault|Timeout))\b")
_SECRET_WORD = re.compile(r"pass(?:word|wd)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
                          r"|auth|credential|session|cookie|signature|card", re.IGNORECASE)
# How people write words and names: lower case, Capitalised, CamelCase with an acronym at the end
# (DynamoDB), or all capitals. Encoded credentials switch case at random (dXNlcjpwYXNz, QWxhZGRpbjpvcGVu).
_WRITTEN_WORD = re.compile(r"^(?:[A-Z]?[a-z'-]+(?:[A-Z][a-z'-]+)*(?:[A-Z]{2,4})?|[A-Z]+)$")
_PLAIN_WORD = re.compile(r"^[A-Za-z][A-Za-z'-]*[,;]?$|^\d+(?:\.\d+)?$")


def _error_events(client, group: str, start: dt.datetime, end: dt.datetime,
                  max_pages: int) -> tuple[dict[str, tuple[int, str]], int, bool]:
    """Error events in [start, end), by event id: (found, pages read, whether the window was read to its end).

    The service answers oldest first and may answer empty pages that still carry a continuation token, so
    a window it could not finish within ``max_pages`` is reported as unfinished, never as clean."""
    arguments = {"logGroupName": group, "filterPattern": ERROR_PATTERN, "startTime": int(start.timestamp() * 1000),
                 "endTime": int(end.timestamp() * 1000) - 1, "limit": 100}
    found: dict[str, tuple[int, str]] = {}
    for pages in range(1, max_pages + 1):
        page = client.filter_log_events(**arguments)
        for event in page.get("events", []):
            if _ERROR_LINE.search(event.get("message", "")):
                key = event.get("eventId") or f"{event['timestamp']}:{event.get('logStreamName')}:{event['message']}"
                found[key] = (event["timestamp"], event["message"])
        if not page.get("nextToken") or page.get("nextToken") == arguments.get("nextToken"):
            return found, pages, True
        arguments["nextToken"] = page["nextToken"]
    return found, max_pages, False


def newest_error_events(client, group: str, start: dt.datetime, end: dt.datetime,
                        keep: int) -> tuple[list[tuple[int, str]], bool]:
    """The ``keep`` newest error events of the window, newest first, and whether the scan was cut short.

    Windows are read newest first: the period's days from the last back, stopping once ``keep`` lines are
    found in the stretch read completely. A day too busy to read within LOG_PAGES pages is split and its
    later half read first, so the lines kept are the newest, not the oldest of a busy day. When the page
    budget runs out before the newest ``keep`` lines are certain (or a single minute is too busy), the
    scan is reported as cut short, so "no errors" is never claimed of a log that was not read."""
    windows: list[tuple[dt.datetime, dt.datetime]] = []
    day_end = end
    while day_end > start:
        windows.append((max(start, day_end - dt.timedelta(days=1)), day_end))
        day_end = windows[-1][0]
    budget = len(windows) + LOG_EXTRA_PAGES
    found: dict[str, tuple[int, str]] = {}
    complete_from = end  # [complete_from, end) has been read to the last event
    cut_short = False

    def certain() -> int:
        floor = int(complete_from.timestamp() * 1000)
        return sum(1 for timestamp, _ in found.values() if timestamp >= floor)

    while windows and certain() < keep:
        if budget <= 0:
            cut_short = True
            break
        window_start, window_end = windows.pop(0)
        events, pages, finished = _error_events(client, group, window_start, window_end, min(LOG_PAGES, budget))
        budget -= pages
        found.update(events)
        if finished:
            complete_from = window_start
        elif window_end - window_start > LOG_SHORTEST_WINDOW:
            middle = window_start + (window_end - window_start) / 2
            windows[:0] = [(middle, window_end), (window_start, middle)]
        else:
            cut_short = True  # more error lines in one minute than LOG_PAGES pages: keep those read
            complete_from = window_start
    newest = sorted(found.values(), reverse=True)
    floor = int(complete_from.timestamp() * 1000)
    if cut_short:
        return newest[:keep], True
    return [event for event in newest if event[0] >= floor][:keep], False


def error_summary(line: str) -> str:
    """What went wrong, in words fit for an email: the error's name (KeyError), or the line's opening
    words up to the first detail (a colon, an identifier, a path), which stay in the full line.

    The summary is the one part of a log line that reaches the email, so it is guarded twice: the line
    is redacted again, and the words stop right after a secret's name (a password follows it) and at
    any long token mixing cases or digits (an encoded credential, a card number)."""
    from sources.aws.redact import redact

    line = redact(line)
    if match := _ERROR_NAME.match(line):
        return match["name"]
    words = []
    for word in line.split(":", 1)[0].split():
        if not _PLAIN_WORD.match(word) or _looks_like_token(word):
            break
        words.append(word)
        if len(words) == 8 or _SECRET_WORD.search(word):
            break
    return " ".join(words).rstrip(",;") or "an error without a readable description"


def _looks_like_token(word: str) -> bool:
    """8+ characters with a digit, or with capitals that are not a CamelCase name (AccessDenied):
    not a word a person wrote but an encoded credential (dXNlcjpwYXNz) or a number (a card)."""
    core = word.rstrip(",;")
    return len(core) >= 8 and (any(c.isdigit() for c in core) or not _WRITTEN_WORD.match(core))


def collect_error_lines(clients: Clients, functions: list[dict[str, Any]], start: dt.datetime,
                        end: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    """The most recent error lines of each function's log group in the window, newest first per function
    (``lines``), and the functions whose scan stopped at its page budget (``cut_short``): their lines may
    leave out newer errors, and having none does not mean the log was clean."""
    from botocore.exceptions import ClientError

    keep = clients.settings.log_lines_per_function
    if keep == 0:
        return {"lines": [], "cut_short": []}
    rows, cut_short = [], []
    for function in functions:
        client = clients.client("logs", function["region"])
        try:
            found, stopped = newest_error_events(client, f"/aws/lambda/{function['name']}", start, end, keep)
        except ClientError as exc:
            if _client_error_code(exc) != "ResourceNotFoundException":
                raise
            continue  # no log group: the function has never run
        if stopped:
            cut_short.append({"function": function["name"], "region": function["region"]})
        for timestamp, message in found:
            moment = dt.datetime.fromtimestamp(timestamp / 1000, dt.UTC)
            line = clean_log_line(message)
            rows.append({"function": function["name"], "region": function["region"],
                         "time": moment.isoformat(timespec="seconds"), "message": line, "summary": error_summary(line)})
    rows.sort(key=lambda r: r["time"], reverse=True)
    lines = sorted(rows, key=lambda r: (r["function"], r["region"]))  # stable: newest first per function
    return {"lines": lines, "cut_short": sorted(cut_short, key=lambda r: (r["function"], r["region"]))}
