"""Build the sample portfolio's AWS resources in a moto server and snapshot them with the real code.

    .venv/bin/python examples/generate_aws_snapshots.py

Each tenant gets its own fictional account (reached by assuming a role, as a real tenant would),
seeded with a small, coherent stack: a site and API behind CloudFront on the tenant's *.example
domain, some Lambda functions, tables and buckets, a few deliberate weaknesses for the CTO report,
and three months of Cost Explorer figures. Then ``exec-reports snapshot aws`` runs against the
server for each tenant, so the files have exactly the format live gathering produces. Secret-looking
Lambda variables get a random value made at run time: it exists only inside moto, never in a file.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import secrets
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import boto3
import yaml

EXAMPLES = Path(__file__).resolve().parent
PERIOD = "2026-W47"  # the sample period the tests use; cost months are Aug-Oct 2026, MTD Nov 1-22
WEEK_START = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
WAF_SERVICE = "AWS WAF"

# Per tenant: account, resources, and monthly unblended cost by service (USD) for Aug, Sep, Oct 2026.
# Each month adds up to the "AWS" line of that month in the tenant's ledger, so the CFO's books and
# the CTO's Cost Explorer figures agree; month-to-date is 22/30 of November's ledger line.
TENANTS = {
    "jada": {
        "account": "111122223333",
        "functions": [("jada-booking-api", "python3.12", 512, {"TABLE": "jada-bookings"}),
                      ("jada-booking-webhook", "python3.12", 256, {"STRIPE_SECRET_KEY": None, "LOG_LEVEL": "info"}),
                      ("jada-nightly-report", "python3.11", 256, {})],
        "buckets": [("jada-site", True), ("jada-backups", True)],
        "tables": [("jada-bookings", True), ("jada-customers", True)],
        "api": {"name": "jada-booking", "open": ["POST /leads"], "protected": ["GET /bookings", "POST /bookings"]},
        "waf": True,
        "ssh_open": False,
        "emails_sent_today": 14,
        # Week 2026-W47 per function: (invocations, errors, throttles, p95 duration ms).
        "activity": {"jada-booking-api": (1240, 3, 0, 420.0), "jada-booking-webhook": (310, 12, 0, 1320.0),
                     "jada-nightly-report": (7, 0, 0, 48200.0)},
        # The API's week: (requests, 5xx, 4xx, p95 latency ms).
        "api_activity": (1580, 41, 63, 890.0),
        # Error lines logged by each function during the week, oldest first; "{secret}" becomes a
        # throwaway value that exists only inside moto (the source must redact it).
        "error_lines": {"jada-booking-webhook": [
            "[ERROR] StripeSignatureVerificationError: No signatures found matching the expected signature",
            "[ERROR] Stripe request failed: Invalid API Key provided: {secret}",
            "[ERROR] KeyError: 'charter_date' in handler.py line 88",
            "Task timed out after 6.01 seconds"]},
        "repositories": ["booking-site", "booking-api"],
        "costs": {
            "2026-08": {"AWS Lambda": "2.37", "Amazon Simple Storage Service": "1.19",
                        "Amazon CloudFront": "2.98", "Amazon Route 53": "0.51", "Amazon DynamoDB": "1.44",
                        "Amazon API Gateway": "0.81", "Amazon Simple Email Service": "0.27",
                        WAF_SERVICE: "6.00", "AmazonCloudWatch": "0.95", "Amazon Cognito": "3.55"},
            "2026-09": {"AWS Lambda": "2.33", "Amazon Simple Storage Service": "1.08",
                        "Amazon CloudFront": "3.00", "Amazon Route 53": "0.51", "Amazon DynamoDB": "1.44",
                        "Amazon API Gateway": "0.81", "Amazon Simple Email Service": "0.27",
                        WAF_SERVICE: "6.00", "AmazonCloudWatch": "0.87", "Amazon Cognito": "3.29"},
            "2026-10": {"AWS Lambda": "2.29", "Amazon Simple Storage Service": "0.95",
                        "Amazon CloudFront": "2.83", "Amazon Route 53": "0.52", "Amazon DynamoDB": "1.37",
                        "Amazon API Gateway": "0.77", "Amazon Simple Email Service": "0.26",
                        WAF_SERVICE: "6.00", "AmazonCloudWatch": "0.78", "Amazon Cognito": "2.96"},
        },
        "month_to_date": "13.17",
    },
    "queenofsandiego": {
        "account": "444455556666",
        "functions": [("qosd-tour-availability", "nodejs20.x", 256, {}),
                      ("qosd-checkin", "nodejs20.x", 256, {})],
        "buckets": [("queenofsandiego-site", True), ("queenofsandiego-photos", True)],
        "tables": [("qosd-bookings", False), ("qosd-guests", True)],
        "api": {"name": "qosd-tours", "open": [], "protected": ["GET /tours", "POST /checkin"]},
        "waf": True,
        "ssh_open": True,
        "emails_sent_today": 6,
        "activity": {"qosd-tour-availability": (2210, 0, 14, 310.0), "qosd-checkin": (450, 2, 0, 1150.0)},
        "api_activity": (2660, 2, 30, 340.0),
        "error_lines": {"qosd-checkin": [
            "[ERROR] ConditionalCheckFailedException: guest already checked in",
            "[ERROR] ValidationException: guest email {email} is not on the manifest"]},
        "repositories": ["tours-site", "checkin-app"],
        "costs": {
            "2026-08": {"AWS Lambda": "0.70", "Amazon Simple Storage Service": "1.15",
                        "Amazon CloudFront": "1.54", "Amazon Route 53": "0.50", "Amazon DynamoDB": "0.56",
                        "Amazon API Gateway": "0.30", WAF_SERVICE: "6.00",
                        "Amazon Elastic Compute Cloud - Compute": "6.01"},
            "2026-09": {"AWS Lambda": "0.79", "Amazon Simple Storage Service": "1.29",
                        "Amazon CloudFront": "1.85", "Amazon Route 53": "0.50", "Amazon DynamoDB": "0.64",
                        "Amazon API Gateway": "0.35", WAF_SERVICE: "6.00",
                        "Amazon Elastic Compute Cloud - Compute": "6.44"},
            "2026-10": {"AWS Lambda": "0.82", "Amazon Simple Storage Service": "1.28",
                        "Amazon CloudFront": "1.95", "Amazon Route 53": "0.51", "Amazon DynamoDB": "0.66",
                        "Amazon API Gateway": "0.36", WAF_SERVICE: "6.00",
                        "Amazon Elastic Compute Cloud - Compute": "6.09"},
        },
        "month_to_date": "12.25",
    },
    "quickdumpnow": {
        "account": "777788889999",
        "functions": [("qdn-quote", "python3.12", 256, {}),
                      ("qdn-quote-legacy", "python3.8", 128, {}),
                      ("qdn-dispatch", "python3.12", 256, {})],
        "buckets": [("quickdumpnow-site", True)],
        "tables": [("qdn-jobs", True)],
        "api": {"name": "qdn-quotes", "open": [], "protected": ["POST /quotes", "GET /quotes/{id}"]},
        "waf": False,
        "ssh_open": False,
        "emails_sent_today": 9,
        "activity": {"qdn-quote": (520, 9, 0, 2400.0), "qdn-quote-legacy": (35, 6, 0, 800.0),
                     "qdn-dispatch": (140, 0, 0, 650.0)},
        "api_activity": (555, 15, 8, 2610.0),
        "error_lines": {"qdn-quote": [
            "[ERROR] ResourceNotFoundException: route calculator qdn-routes not found",
            "Task timed out after 3.00 seconds",
            "[ERROR] ThrottlingException: Rate exceeded calling CalculateRoute"],
            "qdn-quote-legacy": ["[ERROR] ImportError: cannot import name 'geocode' from 'maps'"]},
        "repositories": ["quote-app"],
        "costs": {
            "2026-08": {"AWS Lambda": "2.04", "Amazon Simple Storage Service": "0.74",
                        "Amazon CloudFront": "2.31", "Amazon Route 53": "0.50", "Amazon DynamoDB": "0.98",
                        "Amazon API Gateway": "0.88", "Amazon Simple Email Service": "0.20",
                        "Amazon Location Service": "5.24"},
            "2026-09": {"AWS Lambda": "2.37", "Amazon Simple Storage Service": "0.79",
                        "Amazon CloudFront": "2.63", "Amazon Route 53": "0.50", "Amazon DynamoDB": "1.11",
                        "Amazon API Gateway": "1.01", "Amazon Simple Email Service": "0.25",
                        "Amazon Location Service": "5.92"},
            "2026-10": {"AWS Lambda": "2.31", "Amazon Simple Storage Service": "0.71",
                        "Amazon CloudFront": "2.52", "Amazon Route 53": "0.51", "Amazon DynamoDB": "1.06",
                        "Amazon API Gateway": "0.96", "Amazon Simple Email Service": "0.23",
                        "Amazon Location Service": "5.51"},
        },
        "month_to_date": "10.85",
    },
    "dangerouscentaur": {
        "account": "123456789012",
        "functions": [("dc-storefront-render", "nodejs20.x", 512, {}),
                      ("dc-image-resize", "nodejs20.x", 1024, {})],
        "buckets": [("dangerouscentaur-site", True), ("dangerouscentaur-media-uploads", False)],
        "tables": [("dc-orders", True)],
        "api": {"name": "dc-shop", "open": [], "protected": ["POST /orders"]},
        "waf": False,
        "ssh_open": False,
        "emails_sent_today": 3,
        "activity": {"dc-storefront-render": (3900, 1, 0, 760.0), "dc-image-resize": (260, 4, 0, 5400.0)},
        "api_activity": (120, 0, 2, 450.0),
        "error_lines": {"dc-image-resize": [
            "[ERROR] MemoryError: image 9000x12000 px exceeds the resize limit",
            "[ERROR] AccessDenied: s3 GetObject with token {secret}"]},
        "repositories": ["portfolio-site", "shop-api"],
        # The upload bucket was opened to "*" so a client could fetch files: the public policy the CTO sees.
        "public_policy": "dangerouscentaur-media-uploads",
        "costs": {
            "2026-08": {"AWS Lambda": "1.85", "Amazon Simple Storage Service": "5.39",
                        "Amazon CloudFront": "5.94", "Amazon Route 53": "0.50", "Amazon DynamoDB": "0.65",
                        "Amazon API Gateway": "0.40", "AWS Key Management Service": "1.00"},
            "2026-09": {"AWS Lambda": "2.08", "Amazon Simple Storage Service": "5.81",
                        "Amazon CloudFront": "6.63", "Amazon Route 53": "0.50", "Amazon DynamoDB": "0.71",
                        "Amazon API Gateway": "0.46", "AWS Key Management Service": "1.00"},
            "2026-10": {"AWS Lambda": "1.83", "Amazon Simple Storage Service": "4.99",
                        "Amazon CloudFront": "5.81", "Amazon Route 53": "0.51", "Amazon DynamoDB": "0.62",
                        "Amazon API Gateway": "0.40", "AWS Key Management Service": "1.00"},
        },
        "month_to_date": "11.75",
    },
}


# ---- CFO additions: data transfer and domain registrations (aws.domain_registrations) --------------
# Data transfer out is its own Cost Explorer service: part of each month's CloudFront line moves to it,
# so every month's total (the ledger's AWS line) stays the same.
DATA_TRANSFER = {"jada": "0.42", "queenofsandiego": "0.18", "quickdumpnow": "0.35", "dangerouscentaur": "1.12"}
for _tenant, _moved in DATA_TRANSFER.items():
    for _costs in TENANTS[_tenant]["costs"].values():
        _costs["Amazon CloudFront"] = f"{float(_costs['Amazon CloudFront']) - float(_moved):.2f}"
        _costs["AWS Data Transfer"] = _moved

# Registered domains per tenant: (name, expiry date, auto-renew). moto cannot register a reserved
# .example name nor set an expiry date, so these are served to the real collector through botocore's
# Stubber (ListDomains, GetDomainDetail, ListPrices); the snapshot holds what the collector made of them.
DOMAINS = {
    "jada": [("jada.example", "2027-01-14", False), ("jadacharters.example", "2027-08-02", True)],
    "queenofsandiego": [("queenofsandiego.example", "2027-05-30", True)],
    "quickdumpnow": [("quickdumpnow.example", "2026-12-09", False)],
    "dangerouscentaur": [("dangerouscentaur.example", "2027-09-12", True), ("dcstudio.example", "2027-02-03", True)],
}
TLD_RENEWAL_USD = {"example": 14.0}


def stubbed_domains_client(tenant_id: str):
    import datetime as dt

    from botocore.stub import Stubber

    client = boto3.client("route53domains", region_name="us-east-1")
    stubber = Stubber(client)
    domains = DOMAINS[tenant_id]
    stubber.add_response("list_domains", {"Domains": [
        {"DomainName": name, "AutoRenew": auto, "TransferLock": True,
         "Expiry": dt.datetime.fromisoformat(f"{expires}T00:00:00+00:00")} for name, expires, auto in domains]})
    priced = set()
    for name, expires, auto in domains:
        stubber.add_response("get_domain_detail", {
            "DomainName": name, "Nameservers": [], "AutoRenew": auto,
            "ExpirationDate": dt.datetime.fromisoformat(f"{expires}T00:00:00+00:00"),
            "AdminContact": {}, "RegistrantContact": {}, "TechContact": {}}, {"DomainName": name})
        tld = name.rsplit(".", 1)[-1]
        if tld not in priced:
            priced.add(tld)
            stubber.add_response("list_prices", {"Prices": [
                {"Name": tld, "RenewalPrice": {"Price": TLD_RENEWAL_USD[tld], "Currency": "USD"}}]}, {"Tld": tld})
    stubber.activate()
    return client


def moto_api(endpoint: str, path: str, body: dict | bytes = b"") -> None:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    content_type = "application/json" if isinstance(body, dict) else "text/plain"
    request = urllib.request.Request(f"{endpoint}/moto-api/{path}", data=data, method="POST",
                                     headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=30):
        pass


def role_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/exec-reports-reader"


def account_session(endpoint: str, account: str) -> boto3.Session:
    credentials = boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint).assume_role(
        RoleArn=role_arn(account), RoleSessionName="seed")["Credentials"]
    return boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                         aws_secret_access_key=credentials["SecretAccessKey"],
                         aws_session_token=credentials["SessionToken"], region_name="us-east-1")


def handler_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {'statusCode': 200}\n")
    return buffer.getvalue()


def seed_tenant(endpoint: str, tenant_id: str, spec: dict, domain: str) -> str:
    """Seed one tenant's resources; returns its API's id (activity is seeded later, see main)."""
    session = account_session(endpoint, spec["account"])

    def client(service: str):
        return session.client(service, endpoint_url=endpoint)

    iam = client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    lambda_role = iam.create_role(RoleName=f"{tenant_id}-lambda", AssumeRolePolicyDocument=json.dumps(trust))
    for name, runtime, memory, env in spec["functions"]:
        # None marks a secret-named variable: give it a throwaway value that lives only in moto.
        variables = {k: (v if v is not None else "sk_live_" + secrets.token_hex(12)) for k, v in env.items()}
        client("lambda").create_function(
            FunctionName=name, Runtime=runtime, Role=lambda_role["Role"]["Arn"], Handler="handler.handler",
            Code={"ZipFile": handler_zip()}, MemorySize=memory, Environment={"Variables": variables},
            Tags={"tenant": tenant_id})

    s3 = client("s3")
    for bucket, blocked in spec["buckets"]:
        s3.create_bucket(Bucket=bucket)
        if blocked:
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True})

    dynamodb = client("dynamodb")
    for table, pitr in spec["tables"]:
        dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        if pitr:
            dynamodb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": True})

    http = client("apigatewayv2")
    api = spec["api"]
    api_id = http.create_api(Name=api["name"], ProtocolType="HTTP")["ApiId"]
    authorizer = http.create_authorizer(
        ApiId=api_id, AuthorizerType="JWT", Name="customers", IdentitySource=["$request.header.Authorization"],
        JwtConfiguration={"Audience": [tenant_id], "Issuer": f"https://auth.{domain}/"})["AuthorizerId"]
    for route in api["protected"]:
        http.create_route(ApiId=api_id, RouteKey=route, AuthorizationType="JWT", AuthorizerId=authorizer)
    for route in api["open"]:
        http.create_route(ApiId=api_id, RouteKey=route, AuthorizationType="NONE")
    api_domain = f"{api_id}.execute-api.us-east-1.amazonaws.com"

    site_bucket = spec["buckets"][0][0]
    distributions = {}
    for host, origin in ((f"www.{domain}", f"{site_bucket}.s3.amazonaws.com"), (f"api.{domain}", api_domain)):
        config = {
            "CallerReference": host, "Comment": host, "Enabled": True,
            "Aliases": {"Quantity": 1, "Items": [host]},
            "Origins": {"Quantity": 1, "Items": [{"Id": "origin", "DomainName": origin,
                                                  "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
            "DefaultCacheBehavior": {"TargetOriginId": "origin", "ViewerProtocolPolicy": "redirect-to-https",
                                     "MinTTL": 0},
        }
        if spec["waf"]:
            config["WebACLId"] = (f"arn:aws:wafv2:us-east-1:{spec['account']}:global/webacl/{tenant_id}-edge/"
                                  "a1b2c3d4-0000-4000-8000-000000000001")
        distributions[host] = client("cloudfront").create_distribution(DistributionConfig=config)["Distribution"]

    route53 = client("route53")
    zone_id = route53.create_hosted_zone(Name=domain, CallerReference=domain)["HostedZone"]["Id"].split("/")[-1]
    changes = []
    for host, distribution in distributions.items():
        for record_type in ("A", "AAAA"):
            changes.append({"Action": "CREATE", "ResourceRecordSet": {
                "Name": host, "Type": record_type,
                "AliasTarget": {"HostedZoneId": "Z2FDTNDATAQYW2", "DNSName": distribution["DomainName"],
                                "EvaluateTargetHealth": False}}})
    changes.append({"Action": "CREATE", "ResourceRecordSet": {
        "Name": domain, "Type": "A",
        "AliasTarget": {"HostedZoneId": "Z2FDTNDATAQYW2", "DNSName": distributions[f"www.{domain}"]["DomainName"],
                        "EvaluateTargetHealth": False}}})
    changes.append({"Action": "CREATE", "ResourceRecordSet": {
        "Name": domain, "Type": "MX", "TTL": 3600, "ResourceRecords": [{"Value": f"10 mail.{domain}"}]}})
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})

    ec2 = client("ec2")
    web = ec2.create_security_group(GroupName=f"{tenant_id}-web", Description="public web")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        for port in (80, 443)])
    if spec["ssh_open"]:
        admin = ec2.create_security_group(GroupName=f"{tenant_id}-admin-ssh", Description="admin box")["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=admin, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])

    if spec.get("public_policy"):
        bucket = spec["public_policy"]
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))

    ses = client("ses")
    ses.verify_domain_identity(Domain=domain)
    for number in range(spec["emails_sent_today"]):
        ses.send_email(Source=f"bookings@{domain}", Destination={"ToAddresses": [f"guest{number}@example.com"]},
                       Message={"Subject": {"Data": "Your booking"}, "Body": {"Text": {"Data": "See you soon."}}})

    months = sorted(spec["costs"])
    by_service = {"ResultsByTime": [
        {"TimePeriod": {"Start": f"{month}-01", "End": _month_after(month)}, "Total": {}, "Estimated": False,
         "Groups": [{"Keys": [service], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}
                    for service, amount in sorted(spec["costs"][month].items())]}
        for month in months], "DimensionValueAttributes": []}
    month_to_date = {"ResultsByTime": [
        {"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-23"}, "Groups": [], "Estimated": True,
         "Total": {"UnblendedCost": {"Amount": spec["month_to_date"], "Unit": "USD"}}}],
        "DimensionValueAttributes": []}
    # The source asks by-service first, then month-to-date: moto answers queued results in that order.
    moto_api(endpoint, "static/ce/cost-and-usage-results",
             {"account_id": spec["account"], "results": [by_service, month_to_date]})
    return api_id


def seed_activity(endpoint: str, spec: dict, api_id: str) -> None:
    """CloudWatch sums for the week (spread over three days, so they must be added up) and error log lines."""
    session = account_session(endpoint, spec["account"])

    def client(service: str):
        return session.client(service, endpoint_url=endpoint)

    cloudwatch = client("cloudwatch")
    for name, (invocations, errors, throttles, _) in spec["activity"].items():
        for metric, total in (("Invocations", invocations), ("Errors", errors), ("Throttles", throttles)):
            _put_spread(cloudwatch, "AWS/Lambda", metric, "FunctionName", name, total)
    requests, server_errors, client_errors, _ = spec["api_activity"]
    for metric, total in (("Count", requests), ("5xx", server_errors), ("4xx", client_errors)):
        _put_spread(cloudwatch, "AWS/ApiGateway", metric, "ApiId", api_id, total)
    logs = client("logs")
    for name, lines in spec["error_lines"].items():
        group, stream = f"/aws/lambda/{name}", "2026/11/16/[$LATEST]0a1b2c3d"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = []
        for number, line in enumerate(lines):
            moment = WEEK_START + dt.timedelta(days=1 + number, hours=9, minutes=7 * number)
            text = line.format(secret="sk_live_" + secrets.token_hex(12), email="guest7@example.com")
            events.append({"timestamp": int(moment.timestamp() * 1000), "message": text})
            # An info line between errors: the source must leave it out.
            events.append({"timestamp": int(moment.timestamp() * 1000) + 1, "message": "[INFO] request done"})
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def _put_spread(cloudwatch, namespace: str, metric: str, dimension: str, value: str, total: int) -> None:
    first = total // 3
    for day, amount in ((1, first), (3, first), (5, total - 2 * first)):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{
            "MetricName": metric, "Dimensions": [{"Name": dimension, "Value": value}],
            "Timestamp": WEEK_START + dt.timedelta(days=day, hours=12), "Value": amount, "Unit": "Count"}])


def answer_percentiles_from_the_spec() -> None:
    """p95 statistics come from botocore's Stubber, in the order the source asks (functions by name, then
    the API): moto's GetMetricStatistics ignores ExtendedStatistics. Everything else is moto."""
    from botocore.stub import Stubber

    from sources.aws import live

    queue: list[float] = []
    for tenant in TENANTS.values():
        queue += [tenant["activity"][name][3] for name in sorted(tenant["activity"])]
        queue.append(tenant["api_activity"][3])

    def percentile_client(clients, region):
        made = live.Clients.client(clients, "cloudwatch", region)
        stubber = Stubber(made)
        stubber.add_response("get_metric_statistics", {"Label": "p95", "Datapoints": [
            {"Timestamp": WEEK_START, "ExtendedStatistics": {"p95": queue.pop(0)}}]})
        stubber.activate()
        return made

    live.percentile_client = percentile_client


def _month_after(month: str) -> str:
    year, number = map(int, month.split("-"))
    return f"{year + (number == 12)}-{number % 12 + 1:02d}-01"


def main() -> int:
    import moto.logs.models
    from moto.server import ThreadedMotoServer

    from flows.operate.cli import main as exec_reports

    # CloudWatch Logs (and moto) accept events of the last 14 days only; the sample week is fixed, so
    # this server lives on the Monday after it.
    moto.logs.models.utcnow = lambda: dt.datetime(2026, 11, 23, 9)
    answer_percentiles_from_the_spec()
    portfolio = yaml.safe_load((EXAMPLES / "portfolio.yaml").read_text(encoding="utf-8"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    failures = 0
    try:
        moto_api(endpoint, "seed?a=20261122")  # stable resource ids from run to run
        with tempfile.TemporaryDirectory() as folder:
            live = {"portfolio": portfolio.get("portfolio", {}), "tenants": []}
            # Repository paths in the snapshot read as they would in the real config: data/<tenant>/repos/...
            (Path(folder) / "data").symlink_to(EXAMPLES / "data", target_is_directory=True)
            api_ids = {}
            for tenant in portfolio["tenants"]:
                spec = TENANTS[tenant["id"]]
                api_ids[tenant["id"]] = seed_tenant(endpoint, tenant["id"], spec, tenant["domains"][0])
                live["tenants"].append({
                    "id": tenant["id"], "name": tenant["name"], "domains": tenant["domains"],
                    "sources": {"aws": {"regions": ["us-east-1"], "role_arn": role_arn(spec["account"]),
                                        "endpoint_url": endpoint,
                                        "repositories": [f"data/{tenant['id']}/repos/{name}"
                                                         for name in spec["repositories"]]}}})
            # After every tenant's resources, so their seeded ids stay what they were before activity existed.
            for tenant in portfolio["tenants"]:
                seed_activity(endpoint, TENANTS[tenant["id"]], api_ids[tenant["id"]])
            config = Path(folder) / "portfolio.yaml"
            config.write_text(yaml.safe_dump(live), encoding="utf-8")
            from sources.aws import live as live_source

            real_client = live_source.Clients.client
            for tenant in portfolio["tenants"]:
                def client(self, service, region="us-east-1", _tenant=tenant["id"], _real=real_client):
                    return stubbed_domains_client(_tenant) if service == "route53domains" else _real(self, service, region)

                live_source.Clients.client = client
                output = EXAMPLES / "data" / tenant["id"] / "aws-snapshot.json"
                failures += exec_reports(["snapshot", "aws", "--tenant", tenant["id"], "-o", str(output),
                                          "--config", str(config), "--period", PERIOD])
    finally:
        server.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    import os

    # Dummy credentials: the server is local and only role sessions it issues are used.
    os.environ.update({"AWS_ACCESS_KEY_ID": "sample", "AWS_SECRET_ACCESS_KEY": "sample",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    sys.path.insert(0, str(EXAMPLES.parent))
    sys.exit(main())
