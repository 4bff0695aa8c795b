"""The Lambda/API handler: real JWTs, real Secrets Manager (moto server), a real Prefect API."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import uuid

import boto3
import jwt
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flows.trigger import handler as handler_module
from flows.trigger.handler import BadRequest, _json_body, handler, parse_event_time, parse_trigger

ISSUER = "https://auth.holdings.example/"
AUDIENCE = "exec-reports"
DEPLOYMENT = "send-exec-reports/handler-test"


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
    ({"roles": "cfo"}, 'roles: expected a list of role ids like ["cfo"], got \'cfo\''),
    ({"roles": []}, "roles: name at least one role, or leave roles out"),
    ({"tenants": ["jada", 7]}, "tenants.1: 7 is not a role or tenant id"),
    ({"roles": ["cfo\n"]}, "roles.0: 'cfo\\n' is not a role or tenant id"),
    ({"period": 202647}, "period: expected an ISO week like 2026-W47 or a month like 2026-11, got 202647"),
    ({"period_kind": "day"}, "period_kind: expected 'week' or 'month', got 'day'"),
    ({"dry_run": "yes"}, "dry_run: expected true or false, got 'yes'"),
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


@pytest.fixture
def prefect_api_url(prefect_harness, monkeypatch):
    """The harness's API in the environment, where the handler reads it first (in Lambda it is the
    function's configuration), so a PREFECT_API_URL another test left behind does not win."""
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    return PREFECT_API_URL.value()


def read_run(flow_run_id):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(uuid.UUID(flow_run_id))


def test_an_authorised_api_request_starts_a_real_deployment_run(rs256_env, rsa_keys, registered_deployment,
                                                                 prefect_api_url):
    token = sign(rsa_keys["private"], tenants=["jada"])
    status, body = call(rest_request("POST", "/reports/run", token,
                                     {"roles": ["cfo"], "tenants": ["jada"], "period": "2026-W47"}, base64_body=True))
    assert status == 202, body
    run = read_run(body["flow_run_id"])
    assert run.parameters == {"roles": ["cfo"], "tenants": ["jada"], "period": "2026-W47"}
    assert body["deployment"] == DEPLOYMENT and run.state.is_scheduled()


def test_an_sqs_batch_starts_the_good_messages_and_returns_the_bad_one(rs256_env, registered_deployment,
                                                                      prefect_api_url):
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


def test_an_eventbridge_event_starts_a_run_scheduled_at_the_event_time(rs256_env, registered_deployment,
                                                                       prefect_api_url):
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
             "time": "2026-11-23T15:00:00Z", "detail": {"roles": ["cto"]}}
    result = handler(event, None)
    run = read_run(result["flow_run_id"])
    assert run.parameters == {"roles": ["cto"]}
    assert run.expected_start_time == dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def test_status_returns_last_sent_per_role_and_tenant(rs256_env, rsa_keys, prefect_harness, portfolio_copy,
                                                      prefect_api_url):
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
        rs256_env, rsa_keys, prefect_harness, portfolio_copy, prefect_api_url):
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


# ---- issue 15: malformed events are refused clearly, never a 500 or an exception -------------------------------
# ---- API Gateway -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["!!!not base64!!!", "e30", "eyJyb2xlcyI6IFsiY2ZvIl19\n", "////", "gA=="])
def test_a_body_marked_base64_that_does_not_decode_is_a_400_not_an_empty_request(rs256_env, rsa_keys, body):
    event = rest_request("POST", "/reports/run", sign(rsa_keys["private"], roles=["*"], tenants=["*"]))
    event.update(body=body, isBase64Encoded=True)
    status, answer = call(event)
    assert status == 400
    assert answer["error"] == "the body is marked isBase64Encoded but is not valid base64-encoded UTF-8"


@pytest.mark.parametrize("bad_claim", [[["jada"]], [{"id": "jada"}], 7, {"jada": True}, [None], [["*"]]])
def test_a_scope_claim_of_the_wrong_shape_is_an_invalid_token_not_a_500(rs256_env, rsa_keys, bad_claim):
    token = sign(rsa_keys["private"], tenants=bad_claim)
    status, body = call(rest_request("POST", "/reports/run", token, {"roles": ["cfo"], "tenants": ["jada"]}))
    assert status == 401
    assert body["error"] == "the token's 'tenants' claim must be a string or a list of strings"
    status, body = call(http_api_request("GET", "/reports/status", token))
    assert status == 401


@pytest.mark.parametrize(("change", "expected"), [
    (lambda event: event.update(headers=["Authorization", "Bearer x"]), "headers must be an object"),
    (lambda event: event.update(headers={"Authorization": ["Bearer", "x"]}), "headers must be an object"),
    (lambda event: event.update(requestContext="req"), "requestContext must be an object"),
    (lambda event: event.update(httpMethod=["POST"]), "the request's method and path must be text"),
    (lambda event: event.update(body={"roles": ["cfo"]}), "the body must be text"),
    (lambda event: event.update(isBase64Encoded="yes"), "isBase64Encoded must be true or false"),
    (lambda event: event.update(body="[" * 100_000), "the body is"),
])
def test_a_malformed_api_event_gets_a_400_naming_the_problem(rs256_env, rsa_keys, change, expected):
    event = rest_request("POST", "/reports/run", sign(rsa_keys["private"]), {"roles": ["cfo"]})
    change(event)
    status, body = call(event)
    assert status == 400 and body["error"].startswith(expected), body


def test_the_clock_leeway_is_a_setting(rs256_env, rsa_keys, monkeypatch):

    expired_a_minute_ago = sign(rsa_keys["private"], exp=int(time.time()) - 60, tenants=["jada"])
    request = rest_request("POST", "/reports/run", expired_a_minute_ago, {"roles": ["cfo"], "tenants": ["quickdumpnow"]})
    status, body = call(request)
    assert (status, body["error"]) == (401, "the token has expired")  # default leeway: 30 s
    monkeypatch.setattr(handler_module, "_VERIFIERS", {})
    monkeypatch.setenv("EXEC_REPORTS_JWT_LEEWAY_SECONDS", "120")
    status, body = call(request)
    assert status == 403  # authenticated within the wider leeway, then refused by the claims
    monkeypatch.setenv("EXEC_REPORTS_JWT_LEEWAY_SECONDS", "3600")
    status, body = call(request)
    assert status == 500 and body["error"] == "the trigger service is misconfigured; see its logs"


# ---- EventBridge, SQS and unknown events -----------------------------------------------------------------------


def eventbridge(**fields):
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "time": "2026-11-23T15:00:00Z", "detail": {"roles": ["cto"]}, **fields}


@pytest.mark.parametrize(("event", "expected"), [
    (eventbridge(detail={"roles": ["cto"], "everything": True}), "EventBridge event: everything: unknown key"),
    (eventbridge(detail=["cto"]), "EventBridge event: detail must be an object of run parameters"),
    (eventbridge(detail=None), "EventBridge event: detail must be an object of run parameters"),
    (eventbridge(detail={"roles": ["CTO; rm"]}), "EventBridge event: roles.0: 'CTO; rm' is not a role"),
    (eventbridge(time="next monday"), "EventBridge event: time: 'next monday' is not an ISO 8601 timestamp"),
    (eventbridge(time="2026-11-23T15:00:00"), "EventBridge event: time: '2026-11-23T15:00:00' has no time zone"),
    (eventbridge(time=1763910000), "EventBridge event: time: expected an ISO 8601 timestamp"),
])
def test_a_malformed_eventbridge_event_is_a_logged_structured_failure(caplog, event, expected):
    with caplog.at_level(logging.ERROR, logger="exec_reports.handler"):
        result = handler(event, None)
    assert result["ok"] is False and result["error"].startswith(expected), result
    assert result["event_id"] == event["id"]
    assert any(expected in record.getMessage() for record in caplog.records)


def test_malformed_sqs_records_come_back_as_batch_item_failures(caplog):
    records = [
        "not a record",
        {"messageId": "m-object-body", "body": {"roles": ["cfo"]}},
        {"messageId": "m-not-json", "body": "{not json"},
        {"messageId": "m-unknown-key", "body": json.dumps({"roles": ["cfo"], "to": "victim@evil.example"})},
        {"messageId": "m-deep", "body": "[" * 100_000},
    ]
    with caplog.at_level(logging.ERROR, logger="exec_reports.handler"):
        result = handler({"Records": records}, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": ""}, {"itemIdentifier": "m-object-body"},
                                            {"itemIdentifier": "m-not-json"}, {"itemIdentifier": "m-unknown-key"},
                                            {"itemIdentifier": "m-deep"}]}
    assert handler({"Records": "m-1"}, None)["ok"] is False


@pytest.mark.parametrize("event", [[], "run", None, {}, {"detail": {}}, {"requestContext": "x"},
                                   {"Records": None}])
def test_an_unrecognised_event_is_refused_without_raising(event):
    result = handler(event, None)
    assert result["ok"] is False and result["error"]


# ---- properties: any input is a valid parse or a clear refusal ---------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children,
                                                                                      max_size=4),
                    max_leaves=12)
TRIGGER_KEYS = st.sampled_from(["roles", "tenants", "period", "period_kind", "dry_run", "role", ""])
TRIGGER_LIKE = st.dictionaries(TRIGGER_KEYS, JSON | st.lists(st.sampled_from(["cfo", "jada", "CFO", ""]), max_size=3)
                               | st.sampled_from(["2026-W47", "2026-10", "2026-W99", "2026-13", "week", "month"]),
                               max_size=4)


@settings(max_examples=300, deadline=None)
@given(JSON | TRIGGER_LIKE)
def test_any_payload_is_a_trigger_request_or_a_bad_request(payload):
    try:
        request = parse_trigger(payload)
    except BadRequest as refusal:
        assert str(refusal)
        return
    assert set(request.parameters()) <= {"roles", "tenants", "period", "period_kind", "dry_run"}


@settings(max_examples=300, deadline=None)
@given(body=st.none() | st.text(max_size=40) | st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode())
       | JSON, encoded=st.sampled_from([True, False, None, "true", 1]))
def test_any_body_is_json_or_a_bad_request(body, encoded):
    try:
        _json_body({"body": body, "isBase64Encoded": encoded})
    except BadRequest as refusal:
        assert str(refusal)


@settings(max_examples=200, deadline=None)
@given(st.none() | st.text(max_size=30) | st.integers() | st.datetimes().map(lambda d: d.isoformat()))
def test_any_event_time_is_an_aware_datetime_or_refused(value):
    try:
        parsed = parse_event_time(value)
    except BadRequest as refusal:
        assert str(refusal).startswith("time: ")
        return
    assert parsed is None or parsed.tzinfo is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["POST", "GET", "DELETE", "post"]) | JSON,
       path=st.sampled_from(["/reports/run", "/run/", "/reports/status", "/x"]) | JSON,
       headers=st.none() | st.dictionaries(st.sampled_from(["Authorization", "authorization", "X"]), JSON, max_size=2)
       | JSON, body=st.none() | st.text(max_size=30) | JSON, encoded=st.sampled_from([True, False, None, "yes"]),
       use_token=st.booleans(), http_api=st.booleans())
def test_any_api_request_is_answered_with_a_4xx_never_a_500_or_an_exception(rs256_env, rsa_keys, method, path, headers,
                                                                          body, encoded, use_token, http_api):
    # A valid token that may trigger nothing, so no request can start a run; GET /status with it
    # would read the Prefect API, which is not under test here.
    token = sign(rsa_keys["private"], roles=[], tenants=[])
    if use_token:
        headers = {"Authorization": f"Bearer {token}"}
        assume(not (isinstance(method, str) and method.upper() == "GET" and isinstance(path, str)
                    and path.rstrip("/").endswith("/status")))
    event = {"headers": headers, "body": body, "isBase64Encoded": encoded}
    if http_api:
        event.update(requestContext={"http": {"method": method, "path": path}, "requestId": "r"}, rawPath=path)
    else:
        event.update(httpMethod=method, path=path, requestContext={"requestId": "r"})
    response = handler(event, None)
    assert 400 <= response["statusCode"] < 500, response
    assert "error" in json.loads(response["body"])


# ---- inline mode answers like GET /status ------------------------------------------------------------------------


def test_inline_mode_shows_a_tenant_scoped_token_no_addresses_and_only_its_rows(rs256_env, rsa_keys, monkeypatch,
                                                                               prefect_harness, portfolio_copy):
    monkeypatch.setenv("EXEC_REPORTS_HANDLER_MODE", "inline")
    monkeypatch.setenv("EXEC_REPORTS_CONFIG", str(portfolio_copy))
    scoped = sign(rsa_keys["private"], roles=["gm"], tenants=["jada"])
    status, body = call(rest_request("POST", "/reports/run", scoped,
                                     {"roles": ["gm"], "tenants": ["jada"], "period": "2026-W47", "dry_run": True}))
    assert status == 200, body
    assert [(row["report"], row["tenant"]) for row in body["summary"]["dry_run"]] == [("gm", "jada")]
    assert "recipients" not in body["summary"]["dry_run"][0]
    assert "@" not in json.dumps(body)  # no address anywhere: rows, reasons, warnings or the message
    assert {row["tenant"] for row in body["summary"]["checks"]} <= {"jada"}

    everything = sign(rsa_keys["private"], roles=["*"], tenants=["*"])
    status, body = call(rest_request("POST", "/reports/run", everything,
                                     {"roles": ["gm"], "tenants": ["jada"], "period": "2026-W47", "dry_run": True}))
    assert status == 200 and body["summary"]["dry_run"][0]["recipients"] == ["gm@jada.example"]


@settings(max_examples=300, deadline=None)
@given(claims_value=JSON, roles=st.none() | st.lists(st.sampled_from(["cfo", "gm", "*"]), max_size=2),
       tenants=st.none() | st.lists(st.sampled_from(["jada", "*"]), max_size=2))
def test_any_scope_claim_authorises_refuses_or_is_an_invalid_token(claims_value, roles, tenants):
    from flows.trigger.auth import AuthenticationError, PermissionDenied, authorise, scope_of

    token_claims = {"roles": claims_value, "tenants": ["*"]}
    try:
        allowed = scope_of(token_claims, "roles")
        authorise(token_claims, roles, tenants)
    except AuthenticationError as refusal:
        assert "claim must be a string or a list of strings" in str(refusal)
        return
    except PermissionDenied as refusal:
        assert str(refusal).startswith("the token does not allow")
        return
    assert allowed is None or roles is not None and set(roles) <= allowed


# ---- issue 18: deployment mode talks to Prefect's REST API itself -------------------------------------------


def test_a_trigger_names_the_period_as_the_flow_expects_it():
    request = parse_trigger({"roles": ["cfo"], "period": " 2026-W47 ", "period_kind": "week", "dry_run": True})
    assert request.parameters() == {"roles": ["cfo"], "period": "2026-W47", "period_kind": "week", "dry_run": True}
    assert parse_trigger({"roles": None, "dry_run": False}).parameters() == {}


def test_a_deployment_that_does_not_exist_is_a_misconfiguration_named_in_the_log(rs256_env, rsa_keys, monkeypatch,
                                                                                  registered_deployment, caplog,
                                                                                  prefect_api_url):
    monkeypatch.setenv("EXEC_REPORTS_DEPLOYMENT", "send-exec-reports/no-such-deployment")
    with caplog.at_level(logging.ERROR, logger="exec_reports.handler"):
        status, body = call(rest_request("POST", "/reports/run", sign(rsa_keys["private"]), {"roles": ["cfo"]}))
    assert (status, body["error"]) == (500, "the trigger service is misconfigured; see its logs")
    assert "deployment 'send-exec-reports/no-such-deployment' does not exist" in caplog.text


def test_an_unreachable_prefect_api_is_a_502_for_callers_a_retry_for_sqs_and_eventbridge(rs256_env, rsa_keys,
                                                                                        monkeypatch):
    import socket

    from flows.trigger import prefect_api

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    monkeypatch.setattr(prefect_api, "ATTEMPTS", 1)  # no waiting between retries of a refused connection
    status, body = call(rest_request("POST", "/reports/run", sign(rsa_keys["private"]), {"roles": ["cfo"]}))
    assert status == 502 and body["request_id"] == "req-1" and "Prefect API" in body["error"]
    record = {"messageId": "m-1", "body": json.dumps({"roles": ["cfo"]})}
    assert handler({"Records": [record]}, None) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    with pytest.raises(prefect_api.PrefectApiError, match="cannot reach the Prefect API"):
        handler(eventbridge(), None)  # raised, so Lambda retries the asynchronous invocation


@pytest.mark.parametrize(("api_url", "ui_url"), [
    ("http://127.0.0.1:4200/api", "http://127.0.0.1:4200"),
    ("https://prefect.holdings.example/api/", "https://prefect.holdings.example"),
    ("https://api.prefect.cloud/api/accounts/a1/workspaces/w1",
     "https://app.prefect.cloud/account/a1/workspace/w1"),
])
def test_the_watch_link_is_the_ui_url_prefect_derives_from_the_api_url(api_url, ui_url):
    from flows.trigger.prefect_api import PrefectApi

    api = PrefectApi.from_environment({"PREFECT_API_URL": api_url})
    assert api.run_url("0b1c") == f"{ui_url}/runs/flow-run/0b1c"
    explicit = PrefectApi.from_environment({"PREFECT_API_URL": api_url, "PREFECT_UI_URL": "https://ui.example"})
    assert explicit.run_url("0b1c") == "https://ui.example/runs/flow-run/0b1c"
