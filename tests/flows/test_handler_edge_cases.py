"""The trigger's edge cases (issue 15): every malformed event gets a structured refusal, never a 500, an
exception out of the handler or a silent default; inline answers are scoped like GET /status."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flows.handler import BadRequest, _json_body, handler, parse_event_time, parse_trigger

from .test_handler import call, claims, http_api_request, rest_request, rs256_env, rsa_keys, sign  # noqa: F401

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
    from flows import handler as handler_module

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
    (eventbridge(detail=["cto"]), "EventBridge event: the body must be a JSON object"),
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
