"""The Lambda/API handler: real JWTs, real Secrets Manager (moto server), a real Prefect API."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from flows import handler as handler_module
from flows.handler import handler

ISSUER = "https://auth.holdings.example/"
AUDIENCE = "exec-reports"
DEPLOYMENT = "send-exec-reports/handler-test"


@pytest.fixture(scope="module")
def rsa_keys():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"private": private, "other": other, "public_pem": public_pem}


@pytest.fixture
def rs256_env(rsa_keys, tmp_path, monkeypatch):
    key_file = tmp_path / "public.pem"
    key_file.write_bytes(rsa_keys["public_pem"])
    monkeypatch.setattr(handler_module, "_VERIFIERS", {})
    for name in ("EXEC_REPORTS_JWT_JWKS_FILE", "EXEC_REPORTS_JWT_HS256_SECRET_ID", "EXEC_REPORTS_HANDLER_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EXEC_REPORTS_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("EXEC_REPORTS_JWT_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("EXEC_REPORTS_JWT_PUBLIC_KEY_FILE", str(key_file))
    monkeypatch.setenv("EXEC_REPORTS_DEPLOYMENT", DEPLOYMENT)


def claims(**overrides):
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "sub": "dashboard",
            "roles": ["cfo", "ceo"], "tenants": ["*"]}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(private_key, **overrides) -> str:
    return jwt.encode(claims(**overrides), private_key, algorithm="RS256")


def rest_request(method: str, path: str, token: str | None, body=None, *, base64_body=False):
    raw = json.dumps(body) if body is not None else None
    if raw is not None and base64_body:
        raw = base64.b64encode(raw.encode()).decode()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return {"resource": "/{proxy+}", "path": path, "httpMethod": method, "headers": headers, "body": raw,
            "isBase64Encoded": base64_body, "requestContext": {"requestId": "req-1"}}


def http_api_request(method: str, path: str, token: str | None, body=None):
    return {"version": "2.0", "routeKey": f"{method} {path}", "rawPath": path,
            "headers": {"authorization": f"Bearer {token}"} if token else {},
            "requestContext": {"http": {"method": method, "path": path}, "requestId": "req-2"},
            "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False}


def call(event):
    response = handler(event, None)
    return response["statusCode"], json.loads(response["body"])


# ---- authentication and authorisation (no run is started by any of these) ------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_unsigned_token() -> str:
    header, payload = json.dumps({"alg": "none", "typ": "JWT"}), json.dumps(claims(tenants=["*"], roles=["*"]))
    return f"{b64(header.encode())}.{b64(payload.encode())}."


def hs256_signed_with_public_key(public_pem: bytes) -> str:
    """The classic confusion attack, built by hand because PyJWT refuses to sign it."""
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims()).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.mark.parametrize(("make_token", "expected"), [
    (lambda keys: None, "missing Authorization header"),
    (lambda keys: sign(keys["private"], exp=int(time.time()) - 3600), "the token has expired"),
    (lambda keys: sign(keys["private"], aud="another-service"), "not meant for this audience"),
    (lambda keys: sign(keys["private"], iss="https://evil.example/"), "issuer that is not trusted"),
    (lambda keys: sign(keys["other"]), "signature is not valid"),
    (lambda keys: sign(keys["private"])[:-6] + "AAAAAA", "signature is not valid"),
    (lambda keys: forged_unsigned_token(), "token algorithm 'none' is not accepted"),
    # Algorithm confusion: HS256 "signed" with the server's public key as the shared secret.
    (lambda keys: hs256_signed_with_public_key(keys["public_pem"]), "token algorithm 'HS256' is not accepted"),
    (lambda keys: sign(keys["private"], exp=None), "lacks the 'exp' claim"),
    (lambda keys: "not-a-jwt", "not a JWT"),
])
def test_a_bad_or_missing_token_gets_401_with_the_reason_and_no_stack_trace(rs256_env, rsa_keys, make_token,
                                                                                 expected):
    status, body = call(rest_request("POST", "/reports/run", make_token(rsa_keys), {"roles": ["cfo"]}))
    assert status == 401
    assert expected in body["error"]
    assert "Traceback" not in json.dumps(body)


def test_a_tenant_the_caller_may_not_trigger_gets_403(rs256_env, rsa_keys):
    token = sign(rsa_keys["private"], tenants=["jada"])
    status, body = call(http_api_request("POST", "/reports/run", token, {"roles": ["cfo"], "tenants": ["quickdumpnow"]}))
    assert (status, body["error"]) == (403, "the token does not allow tenants: quickdumpnow")
    status, body = call(http_api_request("POST", "/reports/run", token, {"roles": ["cfo"]}))
    assert status == 403 and "does not allow all tenants" in body["error"]
    status, body = call(http_api_request("POST", "/reports/run", token, {"roles": ["cto"], "tenants": ["jada"]}))
    assert (status, body["error"]) == (403, "the token does not allow roles: cto")


@pytest.mark.parametrize(("body", "expected"), [
    ({"roles": "cfo"}, "roles: Input should be a valid list"),
    ({"roles": ["CFO!"]}, "roles.0: 'CFO!' is not a role or tenant id"),
    ({"period": "last week"}, "period: period 'last week': expected an ISO week"),
    ({"role": ["cfo"]}, "role: unknown key"),
    (["cfo"], "the body must be a JSON object"),
])
def test_a_bad_body_gets_400_naming_the_key(rs256_env, rsa_keys, body, expected):
    status, answer = call(rest_request("POST", "/reports/run", sign(rsa_keys["private"], roles=["*"]), body))
    assert status == 400
    assert answer["error"].startswith(expected)


def test_malformed_json_and_unknown_routes_are_answered_clearly(rs256_env, rsa_keys):
    event = rest_request("POST", "/reports/run", sign(rsa_keys["private"]))
    event["body"] = '{"roles": ['
    status, body = call(event)
    assert status == 400 and body["error"].startswith("the body is not JSON:")
    status, body = call(rest_request("DELETE", "/reports/run", sign(rsa_keys["private"])))
    assert status == 404


def test_hs256_secret_comes_from_secrets_manager(rs256_env, monkeypatch, moto_endpoint):
    secret = "s" * 48
    client = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_secret(Name="exec-reports/jwt", SecretString=secret)
    monkeypatch.delenv("EXEC_REPORTS_JWT_PUBLIC_KEY_FILE")
    monkeypatch.setenv("EXEC_REPORTS_JWT_HS256_SECRET_ID", "exec-reports/jwt")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_endpoint)
    good = jwt.encode(claims(tenants=["jada"]), secret, algorithm="HS256")
    status, body = call(rest_request("POST", "/reports/run", good, {"roles": ["cfo"], "tenants": ["quickdumpnow"]}))
    assert status == 403  # authenticated with the secret, then refused by the claims
    forged = jwt.encode(claims(), "x" * 48, algorithm="HS256")
    status, body = call(rest_request("POST", "/reports/run", forged, {"roles": ["cfo"], "tenants": ["jada"]}))
    assert status == 401 and secret not in json.dumps(body)


# ---- against a running Prefect API --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registered_deployment(prefect_harness):
    from flows.flow import send_exec_reports

    send_exec_reports.to_deployment(name="handler-test").apply()
    return DEPLOYMENT


def read_run(flow_run_id):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(uuid.UUID(flow_run_id))


def test_an_authorised_api_request_starts_a_real_deployment_run(rs256_env, rsa_keys, registered_deployment):
    token = sign(rsa_keys["private"], tenants=["jada"])
    status, body = call(rest_request("POST", "/reports/run", token,
                                     {"roles": ["cfo"], "tenants": ["jada"], "period": "2026-W47"}, base64_body=True))
    assert status == 202, body
    run = read_run(body["flow_run_id"])
    assert run.parameters == {"roles": ["cfo"], "tenants": ["jada"], "period": "2026-W47"}
    assert body["deployment"] == DEPLOYMENT and run.state.is_scheduled()


def test_an_sqs_batch_starts_the_good_messages_and_returns_the_bad_one(rs256_env, registered_deployment):
    from prefect.client.orchestration import get_client

    records = [
        {"messageId": "m-good-1", "body": json.dumps({"roles": ["ceo"], "period": "2026-W46"}), "eventSource": "aws:sqs"},
        {"messageId": "m-bad", "body": "{not json", "eventSource": "aws:sqs"},
        {"messageId": "m-good-2", "body": json.dumps({"roles": ["cmo"], "period": "2026-W46"}), "eventSource": "aws:sqs"},
    ]
    assert handler({"Records": records}, None) == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
    # A redelivered message starts no second run.
    assert handler({"Records": records[:1]}, None) == {"batchItemFailures": []}
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    periods = [(r.parameters.get("roles"), r.parameters.get("period")) for r in runs]
    assert periods.count((["ceo"], "2026-W46")) == 1 and periods.count((["cmo"], "2026-W46")) == 1


def test_an_eventbridge_event_starts_a_run_scheduled_at_the_event_time(rs256_env, registered_deployment):
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
             "time": "2026-11-23T15:00:00Z", "detail": {"roles": ["cto"]}}
    result = handler(event, None)
    run = read_run(result["flow_run_id"])
    assert run.parameters == {"roles": ["cto"]}
    assert run.expected_start_time == dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def test_status_returns_last_sent_per_role_and_tenant(rs256_env, rsa_keys, prefect_harness, portfolio_copy):
    from flows.flow import send_exec_reports

    send_exec_reports(config=str(portfolio_copy), period="2026-W47", roles=["cmo"], return_state=True)
    dashboard = sign(rsa_keys["private"], roles=["*"], tenants=["*"])
    status, body = call(http_api_request("GET", "/reports/status", dashboard))
    assert status == 200
    cmo = [entry for entry in body["last_sent"] if entry["report"] == "cmo"]
    assert cmo and cmo[0]["tenant"] == "portfolio" and cmo[0]["recipients"] == ["cmo@holdings.example"]
    assert dt.datetime.fromisoformat(cmo[0]["time"]) > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)


def test_inline_mode_runs_the_flow_and_returns_the_summary(rs256_env, rsa_keys, monkeypatch, prefect_harness,
                                                          portfolio_copy):
    monkeypatch.setenv("EXEC_REPORTS_HANDLER_MODE", "inline")
    monkeypatch.setenv("EXEC_REPORTS_CONFIG", str(portfolio_copy))
    status, body = call(rest_request("POST", "/reports/run", sign(rsa_keys["private"]),
                                     {"roles": ["cfo"], "period": "2026-W47", "dry_run": True}))
    assert status == 200, body
    assert body["state"] == "Completed"
    assert [item["report"] for item in body["summary"]["dry_run"]] == ["cfo"]


def test_status_shows_a_restricted_token_only_its_roles_and_tenants_without_addresses(
        rs256_env, rsa_keys, prefect_harness, portfolio_copy):
    from flows.flow import send_exec_reports

    send_exec_reports(config=str(portfolio_copy), period="2026-W47", roles=["cmo", "gm"], resend=True,
                      return_state=True)
    token = sign(rsa_keys["private"], roles=["gm"], tenants=["jada"])
    status, body = call(http_api_request("GET", "/reports/status", token))
    assert status == 200
    assert {(entry["report"], entry["tenant"]) for entry in body["last_sent"]} == {("gm", "jada")}
    assert all("recipients" not in entry for entry in body["last_sent"])
    assert "jada.example" not in json.dumps(body) and "holdings.example" not in json.dumps(body)


def test_a_claim_that_is_not_a_list_is_refused_not_a_server_error(rs256_env, rsa_keys):
    status, body = call(rest_request("POST", "/reports/run", sign(rsa_keys["private"], roles=None, tenants=["*"]),
                                     {"roles": ["cfo"]}))
    assert status == 403 and "does not allow roles: cfo" in body["error"]


def test_inline_mode_takes_the_period_from_an_eventbridge_schedule(rs256_env, monkeypatch, prefect_harness,
                                                                    portfolio_copy):
    monkeypatch.setenv("EXEC_REPORTS_HANDLER_MODE", "inline")
    monkeypatch.setenv("EXEC_REPORTS_CONFIG", str(portfolio_copy))
    # Monday 2026-11-23 07:00 in Los Angeles: the weekly run for the week before, 2026-W47.
    event = {"id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
             "time": "2026-11-23T15:00:00Z", "detail": {"roles": ["cfo"], "dry_run": True}}
    result = handler(event, None)
    assert result["state"] == "Completed"
    assert result["summary"]["period"] == "2026-W47"
