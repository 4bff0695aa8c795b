"""The AWS source against moto's server: real boto3 over real HTTP to 127.0.0.1.

World used by most tests (seeded fresh per test):
- tenant "alpha" has its own account 111111111111, reached by assuming a role there;
- tenants "beta" and "gamma" share the default account 123456789012 and are told apart by the tag
  tenant=beta / tenant=gamma.
Expected values below are worked out from what each test seeds, not copied from the code's output.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import urllib.request
import zipfile
from pathlib import Path

import boto3
import pytest

from flows.core.errors import SourceError
from sources.aws import clients as aws_clients
from sources.aws import cloudwatch, gather_aws, read_snapshot, write_snapshot
from sources.aws.briefing import briefing_figures
from sources.aws.findings import FINDING_KINDS
from sources.catalogue import REGISTRY
from sources.registry import SourceContext, Unavailable, is_available

ALPHA_ACCOUNT = "111111111111"
SHARED_ACCOUNT = "123456789012"
ALPHA_ROLE = f"arn:aws:iam::{ALPHA_ACCOUNT}:role/exec-reports-reader"
# Secret values planted in the world; none may come out anywhere.
PLANTED_KEY_ID = "AKIA" + "QZXWVUTSRQPONMLK"
PLANTED_PASSWORD = "plaintext-" + "Hunter2-correct-horse"
REPO_KEY_ID = "AKIA" + "ZZYYXXWWVVUUTTSS"
REPO_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzEXAMPLEKEY"
PERIOD_END = dt.date(2026, 11, 22)  # last full months: 2026-08, 2026-09, 2026-10


def context(tenant: str, tmp_path: Path, domains: list[str] | None = None) -> SourceContext:
    return SourceContext(tenant_id=tenant, tenant_name=tenant.title(), period_start=dt.date(2026, 11, 16),
                         period_end=PERIOD_END, base_dir=tmp_path,
                         tenant_settings={"domains": domains or [f"{tenant}.example"]})


def settings_for(tenant: str, endpoint: str, **extra) -> dict:
    base = {"regions": ["us-east-1"], "endpoint_url": endpoint}
    if tenant == "alpha":
        base["role_arn"] = ALPHA_ROLE
    else:
        base["tags"] = {"tenant": tenant}
    return base | extra


def client(endpoint: str, service: str, account: str = SHARED_ACCOUNT, region: str = "us-east-1"):
    if account == SHARED_ACCOUNT:
        return boto3.client(service, region_name=region, endpoint_url=endpoint)
    credentials = boto3.client("sts", region_name=region, endpoint_url=endpoint).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/exec-reports-reader", RoleSessionName="seed")["Credentials"]
    return boto3.client(service, region_name=region, endpoint_url=endpoint,
                        aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


@pytest.fixture(scope="module")
def moto_endpoint():
    """One moto server for the module: real HTTP on 127.0.0.1, reset before each test."""
    from moto.server import ThreadedMotoServer

    # The server logs one line per request: noise in every failure report.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """A clean moto world per test, reached through the default credential chain with dummy keys."""
    moto_api(moto_endpoint, "reset")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(variable, raising=False)
    # Keep the developer's own ~/.aws out of the tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    return moto_endpoint


def moto_api(endpoint: str, path: str, body: bytes | dict = b"") -> None:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    # A form content type would make the server parse the body away from reset-auth's plain number.
    content_type = "application/json" if isinstance(body, dict) else "text/plain"
    request = urllib.request.Request(f"{endpoint}/moto-api/{path}", data=data, method="POST",
                                     headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201), response.status


# ---- seeding helpers ------------------------------------------------------------------------------


def lambda_role(endpoint: str, account: str) -> str:
    iam = client(endpoint, "iam", account)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    try:
        return iam.create_role(RoleName="lambda-exec", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        return iam.get_role(RoleName="lambda-exec")["Role"]["Arn"]


def zipped_handler() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def add_function(endpoint, account, name, tags, runtime="python3.12", env=None):
    client(endpoint, "lambda", account).create_function(
        FunctionName=name, Runtime=runtime, Role=lambda_role(endpoint, account), Handler="handler.handler",
        Code={"ZipFile": zipped_handler()}, MemorySize=256, Tags=tags, Environment={"Variables": env or {}})


def add_bucket(endpoint, account, name, tags, *, block=True, policy_principal=None):
    s3 = client(endpoint, "s3", account)
    s3.create_bucket(Bucket=name)
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    if block:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
    if policy_principal is not None:
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": policy_principal, "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{name}/*"}]}
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))


def add_table(endpoint, account, name, tags, *, pitr):
    dynamodb = client(endpoint, "dynamodb", account)
    arn = dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()] or [{"Key": "purpose", "Value": "test"}],
    )["TableDescription"]["TableArn"]
    if pitr:
        dynamodb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})
    return arn


def add_distribution(endpoint, account, reference, aliases, origin_domain, tags, *, waf):
    config = {
        "CallerReference": reference,
        "Aliases": {"Quantity": len(aliases), "Items": aliases},
        "Origins": {"Quantity": 1, "Items": [{"Id": "primary", "DomainName": origin_domain,
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "primary", "ViewerProtocolPolicy": "redirect-to-https",
                                 "MinTTL": 0},
        "Comment": reference,
        "Enabled": True,
    }
    if waf:
        config["WebACLId"] = f"arn:aws:wafv2:us-east-1:{account}:global/webacl/{reference}/0000"
    response = client(endpoint, "cloudfront", account).create_distribution_with_tags(DistributionConfigWithTags={
        "DistributionConfig": config,
        "Tags": {"Items": [{"Key": k, "Value": v} for k, v in tags.items()]}})
    return response["Distribution"]


def add_zone(endpoint, account, domain, tags, records):
    route53 = client(endpoint, "route53", account)
    zone_id = route53.create_hosted_zone(Name=domain, CallerReference=f"zone-{domain}")["HostedZone"]["Id"]
    zone_id = zone_id.split("/")[-1]
    if tags:
        route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id,
                                         AddTags=[{"Key": k, "Value": v} for k, v in tags.items()])
    changes = []
    for name, target in records:
        changes.append({"Action": "CREATE", "ResourceRecordSet": {
            "Name": name, "Type": "A",
            "AliasTarget": {"HostedZoneId": "Z2FDTNDATAQYW2", "DNSName": target, "EvaluateTargetHealth": False}}})
    if changes:
        route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return zone_id


def add_http_api(endpoint, account, name, tags, *, open_route, protected_route):
    api = client(endpoint, "apigatewayv2", account)
    api_id = api.create_api(Name=name, ProtocolType="HTTP", Tags=tags)["ApiId"]
    authorizer = api.create_authorizer(
        ApiId=api_id, AuthorizerType="JWT", Name="jwt", IdentitySource=["$request.header.Authorization"],
        JwtConfiguration={"Audience": ["app"], "Issuer": "https://auth.example/"})["AuthorizerId"]
    if open_route:
        api.create_route(ApiId=api_id, RouteKey=open_route, AuthorizationType="NONE")
    if protected_route:
        api.create_route(ApiId=api_id, RouteKey=protected_route, AuthorizationType="JWT", AuthorizerId=authorizer)
    api.create_route(ApiId=api_id, RouteKey="OPTIONS /bookings", AuthorizationType="NONE")
    return api_id


def add_rest_api(endpoint, account, name, tags, methods):
    rest = client(endpoint, "apigateway", account)
    api_id = rest.create_rest_api(name=name, tags=tags)["id"]
    root = next(item["id"] for item in rest.get_resources(restApiId=api_id)["items"] if item["path"] == "/")
    for method, authorization in methods:
        rest.put_method(restApiId=api_id, resourceId=root, httpMethod=method, authorizationType=authorization)
    return api_id


def add_security_group(endpoint, account, name, tags, ports):
    ec2 = client(endpoint, "ec2", account)
    group = ec2.create_security_group(
        GroupName=name, Description=name,
        TagSpecifications=[{"ResourceType": "security-group",
                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])["GroupId"]
    if ports:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
            for port in ports])
    return group


def cost_result(months_and_services: dict[str, dict[str, str]]) -> dict:
    return {"ResultsByTime": [
        {"TimePeriod": {"Start": f"{month}-01", "End": f"{month}-28"}, "Total": {},
         "Groups": [{"Keys": [service], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}
                    for service, amount in services.items()], "Estimated": False}
        for month, services in months_and_services.items()], "DimensionValueAttributes": []}


def mtd_result(amount: str) -> dict:
    return {"ResultsByTime": [{"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-23"},
                               "Total": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}, "Groups": [],
                               "Estimated": True}], "DimensionValueAttributes": []}


def post_costs(endpoint, account, *results):
    moto_api(endpoint, "static/ce/cost-and-usage-results", {"account_id": account, "results": list(results)})


BETA = {"tenant": "beta"}
GAMMA = {"tenant": "gamma"}


@pytest.fixture
def world(aws, tmp_path):
    """Beta holds one bad and one good resource of every kind; gamma and alpha hold their own."""
    endpoint = aws
    # beta (shared account, tag tenant=beta)
    add_function(endpoint, SHARED_ACCOUNT, "beta-old", BETA, runtime="python3.8")
    add_function(endpoint, SHARED_ACCOUNT, "beta-leaky", BETA, env={
        "STRIPE_API_KEY": PLANTED_PASSWORD, "UPLOAD_CREDENTIALS_ID": PLANTED_KEY_ID,
        "DB_PASSWORD_SECRET": f"arn:aws:secretsmanager:us-east-1:{SHARED_ACCOUNT}:secret:db-AbCdEf",
        "LOG_LEVEL": "info"})
    add_function(endpoint, SHARED_ACCOUNT, "beta-good", BETA, env={"LOG_LEVEL": "info"})
    add_bucket(endpoint, SHARED_ACCOUNT, "beta-open-bucket", BETA, block=False)
    add_bucket(endpoint, SHARED_ACCOUNT, "beta-public-policy", BETA, policy_principal="*")
    add_bucket(endpoint, SHARED_ACCOUNT, "beta-good-bucket", BETA,
               policy_principal={"AWS": f"arn:aws:iam::{SHARED_ACCOUNT}:root"})
    add_table(endpoint, SHARED_ACCOUNT, "beta-orders", BETA, pitr=False)
    add_table(endpoint, SHARED_ACCOUNT, "beta-ledger", BETA, pitr=True)
    unprotected = add_distribution(endpoint, SHARED_ACCOUNT, "beta-www", ["www.beta.example"],
                                   "beta-good-bucket.s3.amazonaws.com", BETA, waf=False)
    protected = add_distribution(endpoint, SHARED_ACCOUNT, "beta-app", ["app.beta.example"],
                                 "abc123.execute-api.us-east-1.amazonaws.com", BETA, waf=True)
    add_zone(endpoint, SHARED_ACCOUNT, "beta.example", BETA, [
        ("www.beta.example", unprotected["DomainName"]), ("app.beta.example", protected["DomainName"])])
    http_api = add_http_api(endpoint, SHARED_ACCOUNT, "beta-bookings", BETA,
                            open_route="POST /bookings", protected_route="GET /bookings")
    rest_api = add_rest_api(endpoint, SHARED_ACCOUNT, "beta-legacy", BETA, [("GET", "NONE"), ("POST", "AWS_IAM")])
    open_group = add_security_group(endpoint, SHARED_ACCOUNT, "beta-ssh", BETA, [22])
    add_security_group(endpoint, SHARED_ACCOUNT, "beta-web", BETA, [80, 443])
    # gamma (same account, tag tenant=gamma): every resource is bad, so leaking it into beta would show.
    add_function(endpoint, SHARED_ACCOUNT, "gamma-old", GAMMA, runtime="nodejs16.x")
    add_bucket(endpoint, SHARED_ACCOUNT, "gamma-open-bucket", GAMMA, block=False)
    add_table(endpoint, SHARED_ACCOUNT, "gamma-orders", GAMMA, pitr=False)
    add_security_group(endpoint, SHARED_ACCOUNT, "gamma-rdp", GAMMA, [3389])
    add_zone(endpoint, SHARED_ACCOUNT, "gamma.example", GAMMA, [])
    # an untagged bucket in the shared account belongs to nobody selected by tags
    add_bucket(endpoint, SHARED_ACCOUNT, "untagged-bucket", {}, block=False)
    # alpha (own account): no tags needed
    add_function(endpoint, ALPHA_ACCOUNT, "alpha-api", {}, runtime="python3.12")
    add_bucket(endpoint, ALPHA_ACCOUNT, "alpha-site", {}, block=False)
    add_table(endpoint, ALPHA_ACCOUNT, "alpha-orders", {}, pitr=True)

    repo = tmp_path / "beta-repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "settings.py").write_text(
        f'REGION = "us-east-1"\naws_access_key_id = "{REPO_KEY_ID}"\naws_secret_access_key = "{REPO_SECRET}"\n')
    clean = tmp_path / "beta-clean-repo"
    clean.mkdir()
    (clean / "app.py").write_text('import os\n\nREGION = os.environ.get("AWS_REGION", "us-east-1")\n')
    return {"endpoint": endpoint, "http_api": http_api, "rest_api": rest_api, "open_group": open_group,
            "unprotected": unprotected["Id"], "protected": protected["Id"], "repo": repo, "clean_repo": clean}


def gather(tenant, world, tmp_path, **extra):
    return gather_aws(settings_for(tenant, world["endpoint"], **extra), context(tenant, tmp_path))


def kinds_and_resources(findings):
    return {(f["kind"], f["resource"]) for f in findings}


# ---- findings ----------------------------------------------------------------------------------------


def test_every_finding_kind_fires_on_the_bad_resource_and_not_on_the_good_one(world, tmp_path):
    values = gather("beta", world, tmp_path, repositories=["beta-repo", "beta-clean-repo"])
    found = kinds_and_resources(values["aws.security_findings"])
    http, rest, group = world["http_api"], world["rest_api"], world["open_group"]
    expected = {
        ("lambda-deprecated-runtime", "lambda:us-east-1:beta-old"),
        ("lambda-plaintext-secret", "lambda:us-east-1:beta-leaky env STRIPE_API_KEY"),
        ("lambda-plaintext-secret", "lambda:us-east-1:beta-leaky env UPLOAD_CREDENTIALS_ID"),
        ("s3-no-public-access-block", "s3://beta-open-bucket"),
        ("s3-public-bucket-policy", "s3://beta-public-policy"),
        ("dynamodb-no-point-in-time-recovery", "dynamodb:us-east-1:beta-orders"),
        ("cloudfront-no-waf", f"cloudfront:{world['unprotected']}"),
        ("api-route-without-authorization", f"http-api:{http} POST /bookings"),
        ("api-route-without-authorization", f"rest-api:{rest} GET /"),
        ("security-group-open-to-internet", f"us-east-1:{group}"),
    }
    repo_findings = {r for r in found if r[0] == "repository-hardcoded-secret"}
    assert found - repo_findings == expected
    # detect-secrets reports the planted key id on line 2 of settings.py; the clean repo has none.
    assert ("repository-hardcoded-secret", "beta-repo/src/settings.py:2") in repo_findings
    assert all(resource.startswith("beta-repo/") for _, resource in repo_findings)
    assert {kind for kind, _ in found} == set(FINDING_KINDS)
    for item in values["aws.security_findings"]:
        assert item["tenant"] == "beta" and item["problem"] and item["fix"]
        assert set(item) == {"severity", "kind", "resource", "tenant", "problem", "fix"}


def test_findings_are_ordered_most_severe_first_and_counted_by_severity(world, tmp_path):
    values = gather("beta", world, tmp_path, repositories=["beta-repo"])
    severities = [f["severity"] for f in values["aws.security_findings"]]
    order = ["critical", "high", "medium", "low", "info"]
    assert severities == sorted(severities, key=order.index)
    counts = values["aws.security_finding_counts"]
    assert counts == {s: severities.count(s) for s in order}
    assert sum(counts.values()) == len(values["aws.security_findings"])


def test_inventory_lists_the_tenants_resources_with_their_state(world, tmp_path):
    values = gather("beta", world, tmp_path)
    functions = {f["name"]: f for f in values["aws.lambda_functions"]}
    assert set(functions) == {"beta-old", "beta-leaky", "beta-good"}
    assert functions["beta-old"]["deprecated_runtime"] is True and functions["beta-good"]["deprecated_runtime"] is False
    assert functions["beta-good"]["memory_mb"] == 256
    assert dt.datetime.fromisoformat(functions["beta-good"]["last_modified"]).tzinfo is not None
    buckets = {b["name"]: (b["public_access_block"], b["public_policy"], b["policy_public"])
               for b in values["aws.s3_buckets"]}
    # policy_public is S3's own GetBucketPolicyStatus verdict: only the "*" grant without a condition.
    assert buckets == {"beta-open-bucket": ("missing", "none", False),
                       "beta-public-policy": ("full", "unconditional", True),
                       "beta-good-bucket": ("full", "none", False)}
    assert {(t["name"], t["point_in_time_recovery"]) for t in values["aws.dynamodb_tables"]} == {
        ("beta-orders", False), ("beta-ledger", True)}
    assert {(d["id"], d["aliases"], d["web_acl"]) for d in values["aws.cloudfront_distributions"]} == {
        (world["unprotected"], "www.beta.example", False), (world["protected"], "app.beta.example", True)}
    assert [z["name"] for z in values["aws.route53_zones"]] == ["beta.example"]
    assert {(a["kind"], a["routes"], a["open_routes"]) for a in values["aws.api_endpoints"]} == {
        ("HTTP", 2, "POST /bookings"), ("REST", 2, "GET /")}


def test_stacks_follow_each_domain_through_cloudfront_to_its_origin(world, tmp_path):
    values = gather("beta", world, tmp_path)
    stacks = {(s["domain"], s["distribution"], s["origin"], s["origin_kind"]) for s in values["aws.stacks_by_domain"]}
    assert stacks == {
        ("www.beta.example", world["unprotected"], "beta-good-bucket.s3.amazonaws.com", "S3"),
        ("app.beta.example", world["protected"], "abc123.execute-api.us-east-1.amazonaws.com", "API Gateway"),
    }


# ---- isolation -----------------------------------------------------------------------------------


def _names_in(values) -> str:
    return json.dumps({k: v for k, v in values.items() if is_available(v)}, default=str)


def test_tenants_sharing_an_account_see_only_their_tagged_resources(world, tmp_path):
    beta = _names_in(gather("beta", world, tmp_path))
    gamma_values = gather("gamma", world, tmp_path)
    gamma = _names_in(gamma_values)
    assert "gamma" not in beta and "alpha" not in beta and "untagged-bucket" not in beta
    assert "beta" not in gamma and "alpha" not in gamma and "untagged-bucket" not in gamma
    assert [f["name"] for f in gamma_values["aws.lambda_functions"]] == ["gamma-old"]
    assert {f["kind"] for f in gamma_values["aws.security_findings"]} == {
        "lambda-deprecated-runtime", "s3-no-public-access-block", "dynamodb-no-point-in-time-recovery",
        "security-group-open-to-internet"}


def test_a_tenant_in_its_own_account_sees_only_that_account(world, tmp_path):
    values = gather("alpha", world, tmp_path)
    assert values["aws.account_id"] == ALPHA_ACCOUNT
    assert [f["name"] for f in values["aws.lambda_functions"]] == ["alpha-api"]
    assert [b["name"] for b in values["aws.s3_buckets"]] == ["alpha-site"]
    assert [t["name"] for t in values["aws.dynamodb_tables"]] == ["alpha-orders"]
    assert "beta" not in _names_in(values) and "gamma" not in _names_in(values)


# ---- pagination ----------------------------------------------------------------------------------


def test_every_item_is_read_when_a_service_answers_in_several_pages(aws, tmp_path):
    # moto's ListTables answers 100 names per page, as DynamoDB does.
    dynamodb = client(aws, "dynamodb")
    for number in range(105):
        dynamodb.create_table(TableName=f"t{number:03d}", BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    first_page = dynamodb.list_tables()
    assert len(first_page["TableNames"]) == 100 and "LastEvaluatedTableName" in first_page
    values = gather_aws({"endpoint_url": aws}, context("solo", tmp_path))
    tables = values["aws.dynamodb_tables"]
    assert len(tables) == 105
    assert [t["name"] for t in tables] == [f"t{n:03d}" for n in range(105)]
    assert len([f for f in values["aws.security_findings"] if f["kind"] == "dynamodb-no-point-in-time-recovery"]) == 105


# ---- failures ------------------------------------------------------------------------------------


@pytest.fixture
def dynamodb_denied(monkeypatch):
    """DynamoDB answers AccessDenied; every other service is the real moto server.

    Why a Stubber here: moto's server can enforce IAM policies (/moto-api/reset-auth), but in server
    mode its signature check rejects Lambda, DynamoDB, CloudFront, Route 53 and API Gateway requests
    from a valid IAM user (SignatureDoesNotMatch, as an XML body the JSON/REST protocols cannot parse),
    so it cannot produce a well-formed AccessDeniedException for one service while the others work.
    """
    from botocore.stub import Stubber


    real_client = aws_clients.Clients.client

    def client_with_denied_dynamodb(self, service, region="us-east-1"):
        made = real_client(self, service, region)
        if service == "dynamodb":
            stubber = Stubber(made)
            stubber.add_client_error("list_tables", service_error_code="AccessDeniedException",
                                     service_message="User: arn:aws:iam::123456789012:user/reader is not "
                                                     "authorized to perform: dynamodb:ListTables",
                                     http_status_code=400)
            stubber.activate()
        return made

    monkeypatch.setattr(aws_clients.Clients, "client", client_with_denied_dynamodb)


def test_access_denied_on_one_service_makes_only_its_metrics_unavailable(aws, dynamodb_denied, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    client(aws, "s3").create_bucket(Bucket="still-listed")
    values = gather_aws({"endpoint_url": aws}, context("solo", tmp_path))
    table = values["aws.dynamodb_tables"]
    assert isinstance(table, Unavailable)
    assert "DynamoDB" in table.reason and "AccessDeniedException" in table.reason
    # findings depend on DynamoDB too: a list without its checks would look complete
    assert isinstance(values["aws.security_findings"], Unavailable)
    assert "DynamoDB" in values["aws.security_findings"].reason
    for name in ("aws.lambda_functions", "aws.s3_buckets", "aws.cloudfront_distributions", "aws.route53_zones",
                 "aws.api_endpoints", "aws.ses_quota", "aws.account_id"):
        assert is_available(values[name]), (name, values[name])
    assert [b["name"] for b in values["aws.s3_buckets"]] == ["still-listed"]
    assert [e["service"] for e in values["aws.service_errors"]] == ["Cost Explorer", "DynamoDB"]
    assert "aws DynamoDB unavailable: AccessDeniedException" in caplog.text


def test_unreachable_endpoint_makes_every_service_unavailable_with_the_reason(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    # Port 9 (discard) on localhost is closed on test machines; the connection is refused at once.
    values = gather_aws({"endpoint_url": "http://127.0.0.1:9"}, context("solo", tmp_path))
    assert isinstance(values["aws.lambda_functions"], Unavailable)
    assert "Could not connect" in values["aws.lambda_functions"].reason
    # Code repositories are local folders (none set here), not AWS: only they stay readable.
    assert values["aws.code_repositories"] == []
    assert not any(is_available(v) for k, v in values.items()
                   if k not in ("aws.service_errors", "aws.gathered_at", "aws.code_repositories",
                                "aws.repositories_without_ci"))


def test_unknown_setting_is_named_with_a_suggestion(tmp_path):
    with pytest.raises(SourceError, match=r"sources\.aws\.regoins: unknown key \(did you mean 'regions'\?\)"):
        gather_aws({"regoins": ["us-east-1"]}, context("solo", tmp_path))


# ---- cost and SES ------------------------------------------------------------------------------------


def test_cost_explorer_months_are_summed_per_month_and_rounded_to_cents(world, tmp_path):
    post_costs(world["endpoint"], SHARED_ACCOUNT,
               cost_result({"2026-08": {"AWS Lambda": "1.004", "Amazon Simple Storage Service": "2.5"},
                            "2026-09": {"AWS Lambda": "1.006", "Amazon CloudFront": "0.0001"},
                            "2026-10": {"AWS Lambda": "10.125", "Amazon Route 53": "1.50"}}),
               mtd_result("7.3349"))
    values = gather("beta", world, tmp_path)
    # By hand: cents per (month, service), half up: 1.00, 2.50 | 1.01, 0.00 (dropped) | 10.13, 1.50
    assert values["aws.monthly_cost_by_service"] == [
        {"month": "2026-08", "service": "Amazon Simple Storage Service", "amount": 2.5},
        {"month": "2026-08", "service": "AWS Lambda", "amount": 1.0},
        {"month": "2026-09", "service": "AWS Lambda", "amount": 1.01},
        {"month": "2026-10", "service": "AWS Lambda", "amount": 10.13},
        {"month": "2026-10", "service": "Amazon Route 53", "amount": 1.5},
    ]
    assert values["aws.monthly_cost_total"] == [{"month": "2026-08", "amount": 3.5},
                                                {"month": "2026-09", "amount": 1.01},
                                                {"month": "2026-10", "amount": 11.63}]
    assert values["aws.last_month_cost"] == 11.63
    assert values["aws.month_to_date_cost"] == 7.33


def test_missing_cost_months_make_cost_unavailable_not_zero(world, tmp_path):
    post_costs(world["endpoint"], SHARED_ACCOUNT, cost_result({"2026-10": {"AWS Lambda": "4.00"}}),
               mtd_result("1.00"))
    values = gather("beta", world, tmp_path)
    assert isinstance(values["aws.last_month_cost"], Unavailable)
    assert "2026-08, 2026-09" in values["aws.last_month_cost"].reason
    assert is_available(values["aws.lambda_functions"])


def test_ses_quota_counts_messages_sent_in_the_last_day(world, tmp_path):
    ses = client(world["endpoint"], "ses")
    ses.verify_email_identity(EmailAddress="reports@beta.example")
    for _ in range(2):
        ses.send_email(Source="reports@beta.example", Destination={"ToAddresses": ["ceo@beta.example"]},
                       Message={"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "hi"}}})
    [quota] = gather("beta", world, tmp_path)["aws.ses_quota"]
    assert quota["region"] == "us-east-1" and quota["sent_last_24_hours"] == 2.0
    assert quota["max_send_rate"] > 0 and quota["max_24_hour_send"] > 0


# ---- snapshots and secrets ---------------------------------------------------------------------------


def test_snapshot_gives_back_exactly_the_live_metrics(world, tmp_path):
    post_costs(world["endpoint"], SHARED_ACCOUNT,
               cost_result({"2026-08": {"AWS Lambda": "1"}, "2026-09": {"AWS Lambda": "2"},
                            "2026-10": {"AWS Lambda": "3.333"}}), mtd_result("0.5"))
    live = gather("beta", world, tmp_path, repositories=["beta-repo"])
    path = tmp_path / "snap" / "beta.json"
    write_snapshot(path, live, "beta", PERIOD_END)
    from_file = gather_aws({"snapshot": "snap/beta.json"}, context("beta", tmp_path))
    assert from_file == live
    assert from_file["aws.last_month_cost"] == 3.33


def test_snapshot_keeps_unavailable_metrics_unavailable_with_their_reason(tmp_path):
    values = {"aws.ses_quota": Unavailable("aws.ses_quota", "AWS SES could not be read: AccessDenied"),
              "aws.account_id": "123456789012"}
    write_snapshot(tmp_path / "s.json", values, "beta", PERIOD_END)
    assert read_snapshot(tmp_path / "s.json", "beta") == values


def test_a_snapshot_of_another_tenant_is_refused(tmp_path):
    write_snapshot(tmp_path / "s.json", {"aws.account_id": "123456789012"}, "gamma", PERIOD_END)
    with pytest.raises(SourceError, match="snapshot is of tenant 'gamma', not 'beta'"):
        gather_aws({"snapshot": "s.json"}, context("beta", tmp_path))


def test_no_secret_value_appears_in_metrics_logs_or_errors(world, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG, logger="exec_reports")
    caplog.set_level(logging.INFO)
    values = gather("beta", world, tmp_path, repositories=["beta-repo"])
    write_snapshot(tmp_path / "beta.json", values, "beta", PERIOD_END)
    # Also a failing gather, so error messages are covered too.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    failing = gather_aws(settings_for("beta", "http://127.0.0.1:9"), context("beta", tmp_path))
    texts = [json.dumps(values, default=str), (tmp_path / "beta.json").read_text(), caplog.text,
             json.dumps(failing, default=str)]
    for secret in (PLANTED_KEY_ID, PLANTED_PASSWORD, REPO_KEY_ID, REPO_SECRET):
        for text in texts:
            assert secret not in text
    flagged = [f for f in values["aws.security_findings"] if f["kind"] == "lambda-plaintext-secret"]
    assert len(flagged) == 2 and all("value not shown" in f["problem"] for f in flagged)


def test_gather_through_the_registry_returns_every_declared_metric(world, tmp_path):
    wanted = sorted(REGISTRY.sources["aws"].metrics)
    values = REGISTRY.gather("aws", wanted, settings_for("beta", world["endpoint"]), context("beta", tmp_path))
    assert set(values) == set(wanted)
    missing = [name for name, value in values.items()
               if isinstance(value, Unavailable) and "did not produce" in value.reason]
    assert missing == []


# ---- the CLI and the sample portfolio -------------------------------------------------------------


def test_snapshot_command_writes_what_live_gathering_reads(world, tmp_path, capsys):
    from flows.operate.cli import main

    config = tmp_path / "portfolio.yaml"
    config.write_text(
        "tenants:\n"
        "  - id: beta\n    name: Beta\n    domains: [beta.example]\n"
        f"    sources:\n      aws: {{endpoint_url: '{world['endpoint']}', tags: {{tenant: beta}}, "
        "snapshot: ignored-when-taking-one.json}\n", encoding="utf-8")
    output = tmp_path / "out" / "beta-aws.json"
    # Cost Explorer has no canned figures here, so the command reports that service and exits 1.
    code = main(["snapshot", "aws", "--tenant", "beta", "-o", str(output), "--config", str(config),
                 "--period", "2026-W47"])
    assert code == 1 and "warning: Cost Explorer" in capsys.readouterr().err
    # A snapshot keeps what AWS said; the figures worked from it are worked again when it is read.
    saved = {**read_snapshot(output, "beta"), **briefing_figures(read_snapshot(output, "beta"), "beta")}
    live = gather("beta", world, tmp_path)
    assert {k: v for k, v in saved.items() if k != "aws.gathered_at"} == \
        {k: v for k, v in live.items() if k != "aws.gathered_at"}


def _generator():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "examples" / "generate_aws_snapshots.py"
    spec = importlib.util.spec_from_file_location("generate_aws_snapshots", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sample_values(sample_config, sample_period):
    from flows.gather.gather import gather_source

    wanted = sorted(REGISTRY.sources["aws"].metrics)
    return {t.id: gather_source(sample_config, t.id, "aws", wanted, sample_period) for t in sample_config.tenants}


def test_sample_portfolio_reads_every_aws_metric_from_its_snapshot(sample_config, sample_period):
    for tenant, values in _sample_values(sample_config, sample_period).items():
        unavailable = {k: str(v) for k, v in values.items() if not is_available(v)}
        assert unavailable == {}, tenant
        assert values["aws.service_errors"] == []
        domains = {row["domain"] for row in values["aws.stacks_by_domain"]}
        assert f"www.{tenant}.example" in domains
        assert all(row["distribution"] for row in values["aws.stacks_by_domain"])


def test_sample_costs_are_the_generators_figures_and_about_50_to_84_a_month(sample_config, sample_period):
    from decimal import Decimal

    seeded = _generator().TENANTS
    values = _sample_values(sample_config, sample_period)
    portfolio: dict[str, Decimal] = {}
    for tenant, spec in seeded.items():
        totals = {row["month"]: Decimal(str(row["amount"])) for row in values[tenant]["aws.monthly_cost_total"]}
        expected = {month: sum(Decimal(a) for a in services.values()) for month, services in spec["costs"].items()}
        assert totals == expected, tenant
        assert Decimal(str(values[tenant]["aws.month_to_date_cost"])) == Decimal(spec["month_to_date"])
        for month, amount in totals.items():
            portfolio[month] = portfolio.get(month, Decimal(0)) + amount
    assert sorted(portfolio) == ["2026-08", "2026-09", "2026-10"]
    assert all(Decimal(50) <= amount <= Decimal(84) for amount in portfolio.values()), portfolio


def test_sample_portfolio_shows_each_weakness_the_cto_report_needs(sample_config, sample_period):
    values = _sample_values(sample_config, sample_period)
    kinds = {f["kind"] for v in values.values() for f in v["aws.security_findings"]}
    assert kinds == set(FINDING_KINDS) - {"repository-hardcoded-secret"}
    for tenant, tenant_values in values.items():
        assert {f["tenant"] for f in tenant_values["aws.security_findings"]} <= {tenant}


def test_sample_activity_is_the_generators_week_of_cloudwatch_figures(sample_config, sample_period):
    seeded = _generator().TENANTS
    values = _sample_values(sample_config, sample_period)
    for tenant, spec in seeded.items():
        functions = {row["name"]: (row["invocations"], row["errors"], row["throttles"], row["p95_duration_ms"])
                     for row in values[tenant]["aws.lambda_performance"]}
        assert functions == {name: (calls, errors, throttles, round(p95))
                             for name, (calls, errors, throttles, p95) in spec["activity"].items()}, tenant
        [api] = values[tenant]["aws.api_performance"]
        assert (api["requests"], api["server_errors"], api["client_errors"], api["p95_latency_ms"]) == \
            tuple(round(v) for v in spec["api_activity"]), tenant
    # JADA's API: 41 server errors in 1,580 requests, the figure the CTO brief leads with.
    assert values["jada"]["aws.api_performance"][0]["server_errors"] == 41


def test_sample_error_lines_are_the_latest_three_per_function_with_the_planted_key_redacted(sample_config,
                                                                                            sample_period):
    values = _sample_values(sample_config, sample_period)
    webhook = [row["message"] for row in values["jada"]["aws.lambda_error_lines"]]
    # The webhook logged four error lines (and four info lines); the newest three are kept, newest first.
    assert webhook == ["Task timed out after 6.01 seconds", "KeyError: 'charter_date' in handler.py line 88",
                       "Stripe request failed: Invalid API Key provided: [redacted]"]
    everything = json.dumps({tenant: v["aws.lambda_error_lines"] for tenant, v in values.items()})
    assert "sk_live_" not in everything and "guest7@example.com" not in everything and "[INFO]" not in everything


def test_sample_repositories_without_a_pipeline_and_the_public_bucket(sample_config, sample_period):
    values = _sample_values(sample_config, sample_period)
    without = sorted((tenant, r["name"]) for tenant, v in values.items() for r in v["aws.code_repositories"]
                     if not r["pipeline"])
    assert without == [("dangerouscentaur", "portfolio-site"), ("queenofsandiego", "checkin-app")]
    assert sum(len(v["aws.code_repositories"]) for v in values.values()) == 7
    public = [(tenant, b["name"]) for tenant, v in values.items() for b in v["aws.s3_buckets"] if b["policy_public"]]
    assert public == [("dangerouscentaur", "dangerouscentaur-media-uploads")]


# ---- IAM policy ------------------------------------------------------------------------------------

# IAM action for each API operation, from the AWS service authorization reference (where the action
# name differs from the operation's, or the service authorizes by HTTP verb).
IAM_ACTION = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("apigateway", "*"): "apigateway:GET",
    ("apigatewayv2", "*"): "apigateway:GET",
    ("sts", "GetCallerIdentity"): None,  # needs no permission
}
IAM_PREFIX = {"lambda": "lambda", "s3": "s3", "dynamodb": "dynamodb", "cloudfront": "cloudfront",
              "route53": "route53", "ec2": "ec2", "ce": "ce", "ses": "ses", "sts": "sts",
              "cloudwatch": "cloudwatch", "logs": "logs"}
IAM_PREFIX["route53domains"] = "route53domains"  # aws.domain_registrations


def test_the_iam_policy_in_the_repo_allows_every_call_the_source_makes(world, tmp_path, monkeypatch):

    calls: set[tuple[str, str]] = set()
    real_client = aws_clients.Clients.client

    def recording_client(self, service, region="us-east-1"):
        made = real_client(self, service, region)
        made.meta.events.register("before-call", lambda model, **_: calls.add((service, model.name)))
        return made

    monkeypatch.setattr(aws_clients.Clients, "client", recording_client)
    post_costs(world["endpoint"], SHARED_ACCOUNT, cost_result({"2026-08": {}, "2026-09": {}, "2026-10": {}}),
               mtd_result("0"))
    values = gather("beta", world, tmp_path)
    assert values["aws.service_errors"] == []
    policy = json.loads((Path(__file__).resolve().parents[2] / "deploy/iam/aws-source-policy.json").read_text())
    allowed = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        allowed.update([actions] if isinstance(actions, str) else actions)
    assert not any("*" in action for action in allowed), "no wildcard actions in a least-privilege policy"
    needed = set()
    for service, operation in calls:
        if (service, operation) in IAM_ACTION:
            action = IAM_ACTION[(service, operation)]
        elif (service, "*") in IAM_ACTION:
            action = IAM_ACTION[(service, "*")]
        else:
            action = f"{IAM_PREFIX[service]}:{operation}"
        if action:
            needed.add(action)
    assert needed - allowed == set()
    # This world registers no domain, so GetDomainDetail and ListPrices are not called here; the Route 53
    # Domains grants are checked against the calls the source makes in test_aws_domains.py.
    assert {a for a in allowed - needed if not a.startswith("route53domains:")} == set(), \
        "the policy grants only the calls the source makes"
    assert len(calls) >= 20  # the gather really went through every service


# ---- credentials -----------------------------------------------------------------------------------


@pytest.fixture
def alpha_user_key(aws):
    """An access key that moto files under the alpha account: proof of which credentials were used."""
    iam = client(aws, "iam", ALPHA_ACCOUNT)
    iam.create_user(UserName="reporter")
    return iam.create_access_key(UserName="reporter")["AccessKey"]


def test_a_named_profile_supplies_the_credentials(aws, alpha_user_key, tmp_path, monkeypatch):
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[alpha-readonly]\naws_access_key_id = {alpha_user_key['AccessKeyId']}\n"
                           f"aws_secret_access_key = {alpha_user_key['SecretAccessKey']}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    values = gather_aws({"endpoint_url": aws, "profile": "alpha-readonly"}, context("alpha", tmp_path))
    assert values["aws.account_id"] == ALPHA_ACCOUNT
    default_chain = gather_aws({"endpoint_url": aws}, context("alpha", tmp_path))
    assert default_chain["aws.account_id"] == SHARED_ACCOUNT


def test_a_missing_profile_fails_the_source_naming_the_profile(aws, tmp_path):
    with pytest.raises(SourceError, match=r"tenant 'alpha': sources\.aws: could not obtain AWS credentials: "
                                          r"ProfileNotFound: .*nope"):
        gather_aws({"endpoint_url": aws, "profile": "nope"}, context("alpha", tmp_path))


def test_a_prefect_aws_credentials_block_supplies_the_credentials(prefect_harness, aws, alpha_user_key,
                                                                  tmp_path, caplog):
    from prefect_aws import AwsCredentials

    AwsCredentials(aws_access_key_id=alpha_user_key["AccessKeyId"],
                   aws_secret_access_key=alpha_user_key["SecretAccessKey"],
                   region_name="us-east-1").save("alpha-reader", overwrite=True)
    caplog.set_level(logging.INFO)
    values = gather_aws({"endpoint_url": aws, "credentials_block": "alpha-reader"}, context("alpha", tmp_path))
    assert values["aws.account_id"] == ALPHA_ACCOUNT
    with pytest.raises(SourceError, match="could not load AwsCredentials block 'no-such-block'") as failure:
        gather_aws({"endpoint_url": aws, "credentials_block": "no-such-block"}, context("alpha", tmp_path))
    secret = alpha_user_key["SecretAccessKey"]
    assert secret not in caplog.text and secret not in str(failure.value)
    assert secret not in json.dumps(values, default=str)


@pytest.mark.parametrize(("settings", "message"), [
    ({"regions": ["us-east-one"]}, r"sources\.aws\.regions: 'us-east-one' is not a region name"),
    ({"role_arn": "reader"}, r"sources\.aws\.role_arn: 'reader' is not an IAM role ARN"),
    ({"profile": "a", "credentials_block": "b"}, r"set either profile or credentials_block, not both"),
    ({"cost_months": 0}, r"sources\.aws\.cost_months: expected a whole number from 1 to 12, got 0"),
    ({"tags": ["tenant"]}, r"sources\.aws\.tags: expected a mapping"),
])
def test_bad_settings_fail_naming_the_key_and_value(settings, message, tmp_path):
    with pytest.raises(SourceError, match=message):
        gather_aws(settings, context("alpha", tmp_path))


def test_regional_services_are_read_in_every_configured_region(aws, tmp_path):
    for region in ("us-east-1", "us-west-2"):
        client(aws, "dynamodb", region=region).create_table(
            TableName=f"orders-{region}", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    client(aws, "dynamodb", region="eu-west-1").create_table(
        TableName="orders-not-configured", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    values = gather_aws({"endpoint_url": aws, "regions": ["us-east-1", "us-west-2"]}, context("solo", tmp_path))
    assert {(t["name"], t["region"]) for t in values["aws.dynamodb_tables"]} == {
        ("orders-us-east-1", "us-east-1"), ("orders-us-west-2", "us-west-2")}
    assert [q["region"] for q in values["aws.ses_quota"]] == ["us-east-1", "us-west-2"]


# ---- pure judgements, on hand-made AWS response shapes ---------------------------------------------


def test_only_internet_wide_rules_beyond_web_ports_count_as_open():
    from sources.aws.live import open_ingress

    def rule(low, high, cidr="0.0.0.0/0", protocol="tcp", v6=False):
        ranges = {"Ipv6Ranges": [{"CidrIpv6": cidr}]} if v6 else {"IpRanges": [{"CidrIp": cidr}]}
        return {"IpProtocol": protocol, "FromPort": low, "ToPort": high, **ranges}

    assert open_ingress([rule(80, 80), rule(443, 443)]) == []
    assert open_ingress([rule(22, 22, cidr="10.0.0.0/8")]) == []
    assert open_ingress([rule(80, 443)]) == [{"ports": "tcp 80-443", "source": "0.0.0.0/0"}]
    assert open_ingress([rule(22, 22, cidr="::/0", v6=True)]) == [{"ports": "tcp 22", "source": "::/0"}]
    assert open_ingress([{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]) == [
        {"ports": "all traffic", "source": "0.0.0.0/0"}]


def test_bucket_policies_granting_everyone_are_told_apart_by_condition():
    from sources.aws.live import public_policy_grant

    def policy(principal, effect="Allow", condition=None):
        statement = {"Effect": effect, "Principal": principal, "Action": "s3:GetObject", "Resource": "*"}
        return {"Statement": [statement | ({"Condition": condition} if condition else {})]}

    assert public_policy_grant(None) == "none"
    assert public_policy_grant(policy("*")) == "unconditional"
    assert public_policy_grant(policy({"AWS": ["arn:aws:iam::123456789012:root", "*"]})) == "unconditional"
    assert public_policy_grant(policy("*", condition={"StringEquals": {"aws:SourceVpce": "vpce-1"}})) == "conditional"
    assert public_policy_grant(policy("*", effect="Deny")) == "none"
    assert public_policy_grant(policy({"Service": "cloudfront.amazonaws.com"})) == "none"


def test_environment_variables_are_judged_by_name_and_value_without_keeping_values():
    from sources.aws.live import judge_environment

    flagged = judge_environment({
        "GITHUB_TOKEN": "ghp_plaintext", "LOG_LEVEL": "debug", "SOME_ID": PLANTED_KEY_ID,
        "DB_PASSWORD_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db", "EMPTY_SECRET": ""})
    assert [f["name"] for f in flagged] == ["GITHUB_TOKEN", "SOME_ID"]
    assert PLANTED_KEY_ID not in json.dumps(flagged) and "ghp_plaintext" not in json.dumps(flagged)


def test_sample_cost_explorer_months_agree_with_each_ledgers_aws_line(sample_config, sample_period):
    from decimal import Decimal

    from flows.core.period import parse_period
    from flows.gather.gather import gather_source

    aws_values = _sample_values(sample_config, sample_period)
    for month in ("2026-08", "2026-09", "2026-10"):
        # A month period ends on the month's last day, so "last full month" is that month itself.
        period = parse_period(month)
        for tenant in sample_config.tenants:
            books = gather_source(sample_config, tenant.id, "ledger", ["finance.expenses_by_category"], period)
            [ledger_aws] = [row["amount"] for row in books["finance.expenses_by_category"] if row["category"] == "AWS"]
            [explorer] = [row["amount"] for row in aws_values[tenant.id]["aws.monthly_cost_total"] if row["month"] == month]
            assert Decimal(str(explorer)) == Decimal(str(ledger_aws)), (tenant.id, month)


# ---- CloudWatch: latency, errors, log lines ------------------------------------------------------------

PERIOD_START = dt.date(2026, 11, 16)


def put_metric(endpoint, namespace, metric, dimension, value, when, unit="Count"):
    client(endpoint, "cloudwatch").put_metric_data(Namespace=namespace, MetricData=[{
        "MetricName": metric, "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}],
        "Timestamp": when, "Value": value, "Unit": unit}])


def at(day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, tzinfo=dt.UTC)


@pytest.fixture
def p95_answers(monkeypatch):
    """p95 statistics come from botocore's Stubber: moto's GetMetricStatistics ignores ExtendedStatistics
    (it computes SampleCount, Sum, Minimum, Maximum and Average only). Every other CloudWatch call,
    the sums, goes to the moto server. Answers are queued in the order the source asks."""
    from botocore.stub import Stubber


    queued: list[tuple[str, str, str, float | None]] = []
    stubbed: dict[str, Stubber] = {}

    def percentile_client(clients, region):
        made = aws_clients.Clients.client(clients, "cloudwatch", region)
        stubber = Stubber(made)
        namespace, name, value, p95 = queued.pop(0)
        dimension = {"AWS/Lambda": "FunctionName"}.get(namespace) or ("ApiName" if name.startswith("rest:") else "ApiId")
        start = dt.datetime.combine(PERIOD_START, dt.time(), dt.UTC)
        end = dt.datetime.combine(PERIOD_END + dt.timedelta(days=1), dt.time(), dt.UTC)
        points = [] if p95 is None else [{"Timestamp": start, "ExtendedStatistics": {"p95": p95}}]
        stubber.add_response("get_metric_statistics", {"Label": name, "Datapoints": points}, expected_params={
            "Namespace": namespace, "MetricName": "Duration" if namespace == "AWS/Lambda" else "Latency",
            "Dimensions": [{"Name": dimension, "Value": value}], "StartTime": start, "EndTime": end,
            "Period": 7 * 86400, "ExtendedStatistics": ["p95"]})
        stubber.activate()
        stubbed[value] = stubber
        return made

    monkeypatch.setattr(cloudwatch, "percentile_client", percentile_client)
    yield queued
    assert queued == [], "every queued p95 answer was asked for"
    for stubber in stubbed.values():
        stubber.assert_no_pending_responses()


def test_latency_and_errors_are_summed_over_the_period_per_function_and_api(world, tmp_path, p95_answers):
    endpoint, http_api = world["endpoint"], world["http_api"]
    good, bookings = ("FunctionName", "beta-good"), ("ApiId", http_api)
    for day, invocations, errors in ((16, 100, 3), (19, 150, 4), (22, 50, 0)):
        put_metric(endpoint, "AWS/Lambda", "Invocations", good, invocations, at(day))
        put_metric(endpoint, "AWS/Lambda", "Errors", good, errors, at(day))
    put_metric(endpoint, "AWS/Lambda", "Throttles", good, 2, at(20))
    # Outside the period (the day before and the day after): not counted.
    put_metric(endpoint, "AWS/Lambda", "Invocations", good, 1000, at(15, 23))
    put_metric(endpoint, "AWS/Lambda", "Errors", good, 900, at(23, 0))
    put_metric(endpoint, "AWS/Lambda", "Invocations", ("FunctionName", "beta-old"), 8, at(18))
    for day, count, server, client_side in ((17, 500, 40, 9), (21, 300, 1, 3)):
        put_metric(endpoint, "AWS/ApiGateway", "Count", bookings, count, at(day))
        put_metric(endpoint, "AWS/ApiGateway", "5xx", bookings, server, at(day))
        put_metric(endpoint, "AWS/ApiGateway", "4xx", bookings, client_side, at(day))
    put_metric(endpoint, "AWS/ApiGateway", "Count", ("ApiName", "beta-legacy"), 20, at(18))
    put_metric(endpoint, "AWS/ApiGateway", "5XXError", ("ApiName", "beta-legacy"), 1, at(18))
    # Functions in name order, then APIs in name order; beta-leaky never ran, so CloudWatch has no p95.
    p95_answers += [("AWS/Lambda", "beta-good", "beta-good", 1840.6), ("AWS/Lambda", "beta-leaky", "beta-leaky", None),
                    ("AWS/Lambda", "beta-old", "beta-old", 95.2),
                    ("AWS/ApiGateway", "http", http_api, 712.0), ("AWS/ApiGateway", "rest:", "beta-legacy", 60.4)]
    values = gather("beta", world, tmp_path)
    assert "CloudWatch" not in {e["service"] for e in values["aws.service_errors"]}
    # By hand: invocations 100 + 150 + 50 = 300, errors 3 + 4 + 0 = 7, throttles 2.
    assert values["aws.lambda_performance"] == [
        {"name": "beta-good", "region": "us-east-1", "invocations": 300, "errors": 7, "throttles": 2,
         "p95_duration_ms": 1841},
        {"name": "beta-leaky", "region": "us-east-1", "invocations": 0, "errors": 0, "throttles": 0,
         "p95_duration_ms": None},
        {"name": "beta-old", "region": "us-east-1", "invocations": 8, "errors": 0, "throttles": 0,
         "p95_duration_ms": 95},
    ]
    # By hand: requests 500 + 300 = 800, server errors 40 + 1 = 41, client errors 9 + 3 = 12.
    assert values["aws.api_performance"] == [
        {"name": "beta-bookings", "id": http_api, "kind": "HTTP", "region": "us-east-1", "requests": 800,
         "server_errors": 41, "client_errors": 12, "p95_latency_ms": 712},
        {"name": "beta-legacy", "id": world["rest_api"], "kind": "REST", "region": "us-east-1", "requests": 20,
         "server_errors": 1, "client_errors": 0, "p95_latency_ms": 60},
    ]


LOG_SECRET = "hunter2-" + "Sail0rMoon-42"
LOG_KEY_ID = "AKIA" + "LOGLINESECRET123"


def test_recent_error_lines_are_the_newest_few_per_function_with_secrets_redacted(aws, tmp_path, caplog):
    # moto, like CloudWatch Logs, accepts events of the last 14 days only: this test's period is this week.
    today = dt.datetime.now(dt.UTC).date()
    recent = SourceContext(tenant_id="solo", tenant_name="Solo", period_start=today - dt.timedelta(days=6),
                           period_end=today, base_dir=tmp_path, tenant_settings={"domains": ["solo.example"]})
    add_function(aws, SHARED_ACCOUNT, "solo-api", {})
    add_function(aws, SHARED_ACCOUNT, "solo-quiet", {})  # never logged: no log group at all
    logs = client(aws, "logs")
    logs.create_log_group(logGroupName="/aws/lambda/solo-api")
    logs.create_log_stream(logGroupName="/aws/lambda/solo-api", logStreamName="2026/11/20/[$LATEST]abc")
    base = dt.datetime.combine(today - dt.timedelta(days=8), dt.time(9), dt.UTC)

    def ms(days: float) -> int:
        return int((base + dt.timedelta(days=days)).timestamp() * 1000)

    messages = [
        (ms(0), "[ERROR] KeyError: 'booking' (before the period)"),
        (ms(3), "START RequestId: 8f14e45f-ceea-467f-a0e6-3c1b6b1e3a11 Version: $LATEST"),
        (ms(3.1), f"[ERROR]\t2026-11-20T09:00:00.000Z\t8f14e45f-ceea-467f-a0e6-3c1b6b1e3a11\t"
                  f"ConnectionError: login failed password={LOG_SECRET}"),
        (ms(4), "[INFO] booking saved"),
        (ms(5), f"[ERROR] Stripe call failed with key {LOG_KEY_ID} for owner@solo.example"),
        (ms(6), "Task timed out after 30.03 seconds"),
        (ms(6.5), "[INFO] done"),
    ]
    logs.put_log_events(logGroupName="/aws/lambda/solo-api", logStreamName="2026/11/20/[$LATEST]abc",
                        logEvents=[{"timestamp": t, "message": m} for t, m in messages])
    values = gather_aws({"endpoint_url": aws, "log_lines_per_function": 2}, recent)
    lines = values["aws.lambda_error_lines"]
    # Three error lines fall in the period (days 3.1, 5 and 6); the newest two are kept, newest first.
    assert [line["message"] for line in lines] == [
        "Task timed out after 30.03 seconds",
        "Stripe call failed with key [redacted] for [redacted]",
    ]
    assert {line["function"] for line in lines} == {"solo-api"}
    assert lines[0]["time"] == (base + dt.timedelta(days=6)).isoformat(timespec="seconds")
    everything = gather_aws({"endpoint_url": aws, "log_lines_per_function": 5}, recent)
    messages_kept = [line["message"] for line in everything["aws.lambda_error_lines"]]
    assert messages_kept[-1] == "ConnectionError: login failed password=[redacted]"
    assert len(messages_kept) == 3
    write_snapshot(tmp_path / "solo.json", everything, "solo", today)
    for text in (json.dumps(everything, default=str), (tmp_path / "solo.json").read_text(), caplog.text):
        assert LOG_SECRET not in text and LOG_KEY_ID not in text and "owner@solo.example" not in text


def test_repositories_without_a_ci_configuration_are_listed_with_an_empty_pipeline(world, tmp_path):
    (world["clean_repo"] / ".github" / "workflows").mkdir(parents=True)
    (world["clean_repo"] / ".github" / "workflows" / "deploy.yml").write_text("on: push\n")
    gitlab = tmp_path / "beta-gitlab-repo"
    gitlab.mkdir()
    (gitlab / ".gitlab-ci.yml").write_text("test:\n  script: make test\n")
    values = gather("beta", world, tmp_path, repositories=["beta-repo", "beta-clean-repo", "beta-gitlab-repo"])
    # The secrets column counts the repository's hardcoded-secret findings (detect-secrets may flag a
    # planted line with more than one detector, so it is at least the two planted lines).
    planted = [f for f in values["aws.security_findings"] if f["resource"].startswith("beta-repo/")]
    assert len(planted) >= 2
    assert values["aws.code_repositories"] == [
        {"name": "beta-repo", "path": "beta-repo", "pipeline": "", "secrets": len(planted)},
        {"name": "beta-clean-repo", "path": "beta-clean-repo", "pipeline": "GitHub Actions", "secrets": 0},
        {"name": "beta-gitlab-repo", "path": "beta-gitlab-repo", "pipeline": "GitLab CI", "secrets": 0},
    ]


def test_s3s_policy_status_calls_a_star_grant_narrowed_by_a_condition_not_public(aws, tmp_path):
    s3 = client(aws, "s3")
    s3.create_bucket(Bucket="narrowed")
    s3.put_bucket_policy(Bucket="narrowed", Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::narrowed/*",
        "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-0123456789abcdef0"}}}]}))
    add_bucket(aws, SHARED_ACCOUNT, "wide-open", {}, policy_principal="*")
    values = gather_aws({"endpoint_url": aws}, context("solo", tmp_path))
    buckets = {b["name"]: (b["public_policy"], b["policy_public"]) for b in values["aws.s3_buckets"]}
    # As written, both grant "*"; S3's GetBucketPolicyStatus calls only the unconditional one public.
    assert buckets == {"narrowed": ("conditional", False), "wide-open": ("unconditional", True)}


# ---- error lines of a busy log ------------------------------------------------------------------------


def solo_api_logs(aws, stream: str, events: list[tuple[dt.datetime, str]]) -> None:
    """A function solo-api whose log group holds ``events`` (time, message) in one stream."""
    add_function(aws, SHARED_ACCOUNT, "solo-api", {})
    logs = client(aws, "logs")
    logs.create_log_group(logGroupName="/aws/lambda/solo-api")
    logs.create_log_stream(logGroupName="/aws/lambda/solo-api", logStreamName=stream)
    logs.put_log_events(logGroupName="/aws/lambda/solo-api", logStreamName=stream, logEvents=[
        {"timestamp": int(at.timestamp() * 1000), "message": message} for at, message in events])


def busy_log(aws, today: dt.date, lines: int) -> dt.datetime:
    """solo-api logs ``lines`` error lines, one every 10 s from 09:00 two days ago; returns the first's time."""
    first = dt.datetime.combine(today - dt.timedelta(days=2), dt.time(9), dt.UTC)
    solo_api_logs(aws, "busy", [(first + dt.timedelta(seconds=10 * n), f"[ERROR] ValueError: booking {n} has no "
                                "charter date") for n in range(lines)])
    return first


def test_a_busy_day_keeps_its_newest_error_lines_not_its_oldest(aws, tmp_path, monkeypatch):
    # One page per read (100 events): the busy day's 250 lines take three pages, more than one read allows.
    monkeypatch.setattr(cloudwatch, "LOG_PAGES", 1)
    today = dt.datetime.now(dt.UTC).date()
    first = busy_log(aws, today, 250)
    recent = SourceContext(tenant_id="solo", tenant_name="Solo", period_start=today - dt.timedelta(days=6),
                           period_end=today, base_dir=tmp_path, tenant_settings={})
    values = gather_aws({"endpoint_url": aws, "log_lines_per_function": 3}, recent)
    lines = values["aws.lambda_error_lines"]
    # Lines 0..249: the newest three are 249, 248, 247, the last at 09:00 + 249 x 10 s = 09:41:30.
    assert [line["message"] for line in lines] == [f"ValueError: booking {n} has no charter date"
                                                   for n in (249, 248, 247)]
    assert lines[0]["time"] == (first + dt.timedelta(seconds=2490)).isoformat(timespec="seconds")
    assert values["aws.lambda_error_scan_cut_short"] == []


def test_a_scan_that_runs_out_of_pages_is_marked_cut_short(aws, tmp_path, monkeypatch):
    # One page a read and no pages beyond one a day: the busy day cannot be narrowed down to its end.
    monkeypatch.setattr(cloudwatch, "LOG_PAGES", 1)
    monkeypatch.setattr(cloudwatch, "LOG_EXTRA_PAGES", 0)
    today = dt.datetime.now(dt.UTC).date()
    busy_log(aws, today, 250)
    busy_day_last = SourceContext(tenant_id="solo", tenant_name="Solo", period_start=today - dt.timedelta(days=8),
                                  period_end=today - dt.timedelta(days=2), base_dir=tmp_path, tenant_settings={})
    values = gather_aws({"endpoint_url": aws, "log_lines_per_function": 3}, busy_day_last)
    assert values["aws.lambda_error_scan_cut_short"] == [{"function": "solo-api", "region": "us-east-1"}]
    # What was read is still shown, marked as possibly not the newest.
    assert len(values["aws.lambda_error_lines"]) == 3


def test_empty_pages_that_keep_a_continuation_token_are_a_cut_short_scan_not_a_clean_log(monkeypatch):
    """CloudWatch Logs may answer empty pages that still carry a nextToken while it searches many streams.
    moto always finishes in one answer, so botocore's Stubber plays the service here."""
    from botocore.stub import Stubber

    monkeypatch.setattr(cloudwatch, "LOG_EXTRA_PAGES", 4)
    logs = boto3.client("logs", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    stubber = Stubber(logs)
    # One day: a budget of 1 + 4 pages, all empty with a token.
    for page in range(5):
        stubber.add_response("filter_log_events", {"events": [], "nextToken": f"token-{page}"})
    start = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    with stubber:
        found, cut_short = cloudwatch.newest_error_events(logs, "/aws/lambda/solo-api", start,
                                                    start + dt.timedelta(days=1), keep=3)
    stubber.assert_no_pending_responses()
    assert found == [] and cut_short is True


def test_secrets_in_every_leaking_shape_stay_out_of_the_metrics_snapshot_and_log(aws, tmp_path, caplog):
    from tests.sources.test_aws_redact import LEAKS

    today = dt.datetime.now(dt.UTC).date()
    recent = SourceContext(tenant_id="solo", tenant_name="Solo", period_start=today - dt.timedelta(days=6),
                           period_end=today, base_dir=tmp_path, tenant_settings={})
    base = dt.datetime.combine(today - dt.timedelta(days=3), dt.time(9), dt.UTC)
    solo_api_logs(aws, "leaks", [(base + dt.timedelta(minutes=n), line) for n, (line, _) in enumerate(LEAKS)])
    values = gather_aws({"endpoint_url": aws, "log_lines_per_function": 50}, recent)
    assert len(values["aws.lambda_error_lines"]) == len(LEAKS)
    write_snapshot(tmp_path / "solo.json", values, "solo", today)
    everything = (json.dumps(values, default=str), (tmp_path / "solo.json").read_text(), caplog.text)
    for _, parts in LEAKS:
        for part in parts:
            for text in everything:
                assert part not in text, part
