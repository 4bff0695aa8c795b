"""The handler's refusals, seen from its logs (cases 7 and 8 of the second hardening pass: no log line for
any of 47 refused requests, an ``exp`` sent as a numeric string accepted, an SQS record that is not an
object answered with ``itemIdentifier: ""``, and botocore's DEBUG lines printing the JWT secret read from
Secrets Manager)."""

from __future__ import annotations

import json
import logging
import time

import boto3
import jwt
import pytest

from flows.trigger.handler import handler
from tests.flows.trigger.test_handler import call, claims, rest_request, sign

LOGGER = "exec_reports.handler"


@pytest.mark.parametrize(("token", "body", "path", "status", "reason"), [
    (None, {"roles": ["cfo"]}, "/reports/run", 401, "missing Authorization header"),
    ("expired", {"roles": ["cfo"]}, "/reports/run", 401, "the token has expired"),
    ("good", {"roles": ["cfo"], "tenants": ["quickdumpnow"]}, "/reports/run", 403,
     "the token does not allow tenants: quickdumpnow"),
    ("good", {"roles": ["cfo"], "to": "victim@evil.example"}, "/reports/run", 400, "to: unknown key"),
    ("good", None, "/reports/delete", 404, "no route for POST /reports/delete"),
])
def test_every_refusal_is_logged_with_status_reason_and_request_id_never_the_token(
        rs256_env, rsa_keys, caplog, token, body, path, status, reason):
    made = {None: None, "expired": sign(rsa_keys["private"], exp=int(time.time()) - 3600),
            "good": sign(rsa_keys["private"], tenants=["jada"])}[token]
    with caplog.at_level(logging.DEBUG):
        answered, answer = call(rest_request("POST", path, made, body))
    assert answered == status and reason in answer["error"]
    [line] = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert line.startswith(f"request req-1 refused: {status} ") and reason in line
    if made:
        assert made not in caplog.text and made.split(".")[2] not in caplog.text


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_a_date_claim_sent_as_a_numeric_string_is_refused(rs256_env, rsa_keys, claim):
    value = str(int(time.time()) + (300 if claim == "exp" else -10))
    status, body = call(rest_request("POST", "/reports/run", sign(rsa_keys["private"], **{claim: value}),
                                     {"roles": ["cfo"]}))
    assert status == 401 and body["error"] == f"the token's '{claim}' claim must be a number of seconds"
    status, _ = call(rest_request("POST", "/reports/run", sign(rsa_keys["private"], **{claim: True}),
                                  {"roles": ["cfo"]}))
    assert status == 401


def test_an_sqs_record_that_arrived_as_json_text_comes_back_under_its_real_message_id(caplog):
    records = [json.dumps({"messageId": "m-as-text", "body": json.dumps({"roles": ["cfo"], "evil": 1})}),
               {"messageId": "m-object", "body": "[]"}]
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        result = handler({"Records": records}, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-as-text"}, {"itemIdentifier": "m-object"}]}
    assert "SQS message m-as-text rejected: the record is not a JSON object" in caplog.text


@pytest.mark.parametrize("botocore_level", [None, logging.DEBUG])
def test_the_jwt_secret_never_prints_even_with_every_logger_at_debug(rs256_env, monkeypatch, moto_endpoint, caplog,
                                                                     botocore_level):
    secret = "k" * 20 + "-jwt-secret-" + "z" * 20
    client = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    name = f"exec-reports/jwt-{botocore_level}"
    client.create_secret(Name=name, SecretString=secret)
    monkeypatch.delenv("EXEC_REPORTS_JWT_PUBLIC_KEY_FILE")
    monkeypatch.setenv("EXEC_REPORTS_JWT_HS256_SECRET_ID", name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_endpoint)
    token = jwt.encode(claims(tenants=["jada"]), secret, algorithm="HS256")
    with caplog.at_level(logging.DEBUG):  # the root logger, as a Lambda with LOG_LEVEL=DEBUG has it
        if botocore_level is not None:  # and botocore itself set to DEBUG on purpose
            caplog.set_level(botocore_level, logger="botocore")
        status, _ = call(rest_request("POST", "/reports/run", token, {"roles": ["cfo"], "tenants": ["quickdumpnow"]}))
    assert status == 403  # the secret was read and used
    assert any(r.name.startswith("botocore") for r in caplog.records)  # botocore did log, at INFO or DEBUG
    assert secret not in caplog.text and "jwt-secret" not in caplog.text
