"""``handler(event, context)``: start report runs from AWS (Lambda) or locally.

Events: EventBridge (scheduled or custom; parameters in ``detail``), SQS batches (one trigger per
message; failed messages come back in ``batchItemFailures``), and API Gateway requests, REST (v1) and
HTTP API (v2) payloads: ``POST .../run`` starts a run, ``GET .../status`` returns the last sends.
API requests need ``Authorization: Bearer <JWT>`` (see flows.trigger.auth). A response never carries a
stack trace: unexpected errors are logged here and answered with a request id.

Environment: EXEC_REPORTS_DEPLOYMENT (default send-exec-reports/weekly), EXEC_REPORTS_HANDLER_MODE
(``deployment``: start a deployment run and return its id; ``inline``: run the flow here and return
the summary), PREFECT_API_URL (and PREFECT_API_KEY), and the EXEC_REPORTS_JWT_* settings of flows.trigger.auth.

Deployment mode needs only the standard library, PyJWT (+ cryptography) and boto3: runs are started
and the status is read through Prefect's REST API (flows.trigger.prefect_api), so this module and what it
imports fit a small Lambda zip (deploy/lambda/build_package.py lists them). Keep it that way: no
Prefect, pydantic, yaml or report code at import time; inline mode imports the flow when it runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from flows.core.aws_secrets import read_secret_string
from flows.core.errors import ConfigurationError
from flows.delivery.feedback import handle_feedback_notification, is_ses_feedback
from flows.orchestrator.history import summarise_history
from flows.trigger.auth import (
    AuthenticationError,
    PermissionDenied,
    TokenVerifier,
    authorise,
    load_verifier,
)
from flows.trigger.prefect_api import PrefectApi, PrefectApiError
from flows.trigger.requests import (
    BadRequest,
    TriggerRequest,
    _headers,
    _json_body,
    _method_and_path,
    parse_event_time,
    parse_trigger,
)
from flows.trigger.scope import Scope, scope_inline_result

log = logging.getLogger("exec_reports.handler")

DEFAULT_DEPLOYMENT = "send-exec-reports/weekly"


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Never raises for a malformed event (a retry would not fix it): API requests get a 4xx, SQS
    messages come back as batch item failures, anything else gets a logged, structured refusal.
    Only a run that could not be started for another reason (the Prefect API is down) raises from an
    EventBridge event, so Lambda's retries for asynchronous invocations can try again."""
    environ = os.environ
    if not isinstance(event, Mapping):
        return refuse_event("the event is not a JSON object")
    if "Records" in event:
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], Mapping) and "Sns" in records[0]:
            return handle_sns(event, environ)
        return handle_sqs(event, environ)
    if "detail-type" in event and "source" in event:
        return handle_eventbridge(event, environ)
    request_context = event.get("requestContext")
    if "httpMethod" in event or (isinstance(request_context, Mapping) and "http" in request_context):
        return handle_api(event, context, environ)
    return refuse_event("unrecognised event: expected an API Gateway request, an SQS batch or an EventBridge event")


def refuse_event(reason: str, event_id: Any = None) -> dict[str, Any]:
    """The structured, logged answer to an event nobody should retry."""
    log.error("event %s refused: %s", event_id if event_id is not None else "(no id)", reason)
    return {"ok": False, "error": reason, "event_id": event_id if isinstance(event_id, str) else None}


def handle_eventbridge(event: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    event_id = event.get("id")
    detail = event.get("detail")
    try:
        if not isinstance(detail, Mapping):  # EventBridge always sends one: {} for a plain schedule
            raise BadRequest("detail must be an object of run parameters ({} for every role, previous period)")
        request = parse_trigger(detail)
        # A scheduled event's time is when the run was due: the flow derives its period from it.
        scheduled = parse_event_time(event.get("time"))
    except BadRequest as exc:
        return refuse_event(f"EventBridge event: {exc}", event_id)
    key = f"eventbridge-{event_id}" if isinstance(event_id, str) and event_id else None
    return start_run(request, environ, idempotency_key=key, scheduled_time=scheduled)


def handle_sqs(event: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    records = event.get("Records")
    if not isinstance(records, list):
        return refuse_event("an SQS event's Records must be a list")
    failures = []
    for record in records:
        message_id = sqs_message_id(record)
        try:
            if not isinstance(record, Mapping):
                raise BadRequest("the record is not a JSON object")
            body = record.get("body")
            if not isinstance(body, str):
                raise BadRequest("the message body is not text")
            try:
                payload = json.loads(body)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise BadRequest(f"the message body is not JSON: {exc}") from None
            if is_ses_feedback(payload):
                # SES delivery feedback (SNS -> SQS): unmatched messages come back, to be retried or dead-lettered.
                if not handle_feedback_notification(payload, environ).ok:
                    failures.append({"itemIdentifier": message_id})
                continue
            request = parse_trigger(payload)
            # SQS delivers at least once: the message id makes a redelivery start no second run.
            start_run(request, environ, idempotency_key=f"sqs-{message_id}")
        except BadRequest as exc:
            log.error("SQS message %s rejected: %s", message_id or "(no id)", exc)
            failures.append({"itemIdentifier": message_id})
        except Exception:
            log.exception("SQS message %s could not start a run", message_id or "(no id)")
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def sqs_message_id(record: Any) -> str:
    """The record's messageId, also from a record that arrived as JSON text instead of an object, so the
    refusal names the message that comes back. Only a record without any id gets "", which SQS reads as the
    whole batch failing: every message of it comes back (the idempotency keys start no run twice)."""
    if isinstance(record, str | bytes):
        try:
            record = json.loads(record)
        except (ValueError, RecursionError):
            return ""
    message_id = record.get("messageId") if isinstance(record, Mapping) else None
    if isinstance(message_id, int) and not isinstance(message_id, bool):
        message_id = str(message_id)
    if not isinstance(message_id, str) or not message_id:
        log.error("an SQS record has no message id: the whole batch comes back to be retried")
        return ""
    return message_id


def handle_sns(event: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """SES delivery feedback delivered by SNS straight to the function (no queue). Anything else on the
    topic is refused, logged; a store that cannot be written raises, so Lambda retries the invocation."""
    applied, refused = 0, []
    for record in event["Records"]:
        sns = record.get("Sns") if isinstance(record, Mapping) else None
        message_id = sns.get("MessageId") if isinstance(sns, Mapping) else None
        if not isinstance(sns, Mapping) or not is_ses_feedback(sns.get("Message")):
            refused.append(message_id if isinstance(message_id, str) else "(no id)")
            continue
        result = handle_feedback_notification(sns.get("Message"), environ)
        applied += len(result.matched)
    if refused:
        log.error("SNS messages %s refused: not SES delivery feedback", ", ".join(refused))
    return {"ok": not refused, "applied": applied, "refused": refused}


def handle_api(event: Mapping[str, Any], context: Any, environ: Mapping[str, str]) -> dict[str, Any]:
    request_context = event.get("requestContext")
    request_id = getattr(context, "aws_request_id", None) or (
        request_context.get("requestId", "") if isinstance(request_context, Mapping) else "")
    try:
        method, path = _method_and_path(event)
        headers = _headers(event)
        claims = verifier(environ).verify(headers.get("authorization"))
        if method == "GET" and path.rstrip("/").endswith("/status"):
            return respond(200, status_body(claims, environ))
        if method == "POST" and path.rstrip("/").endswith("/run"):
            request = parse_trigger(_json_body(event))
            authorise(claims, request.roles, request.tenants)
            result = start_run(request, environ)
            if _mode(environ) == "inline":
                return respond(200, scope_inline_result(result, claims))
            return respond(202, result)
        return refuse(404, f"no route for {method} {path}: use POST .../run or GET .../status", request_id)
    except AuthenticationError as exc:
        return refuse(401, str(exc), request_id, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    except PermissionDenied as exc:
        return refuse(403, str(exc), request_id)
    except BadRequest as exc:
        return refuse(400, str(exc), request_id)
    except PrefectApiError as exc:
        log.error("request %s: the Prefect API failed: %s", request_id, exc)
        return respond(502, {"error": "the Prefect API could not be reached or refused the call; try again later",
                             "request_id": request_id})
    except ConfigurationError as exc:
        log.error("handler misconfigured: %s", exc)
        return respond(500, {"error": "the trigger service is misconfigured; see its logs", "request_id": request_id})
    except Exception:
        log.exception("request %s failed", request_id)
        return respond(500, {"error": "internal error", "request_id": request_id})


# ---- actions -----------------------------------------------------------------------------------------


def start_run(request: TriggerRequest, environ: Mapping[str, str], *, idempotency_key: str | None = None,
              scheduled_time: dt.datetime | None = None) -> dict[str, Any]:
    parameters = request.parameters()
    if _mode(environ) == "inline":
        from flows import (
            flow as prefect_flow,  # Prefect and the report code: only the container image has them
        )

        return prefect_flow.run_inline(parameters, scheduled_time=scheduled_time)
    deployment = environ.get("EXEC_REPORTS_DEPLOYMENT", DEFAULT_DEPLOYMENT)
    return PrefectApi.from_environment(environ).start_deployment_run(
        deployment, parameters, idempotency_key=idempotency_key, scheduled_time=scheduled_time)


def status_body(claims: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Only what the token may see: its roles and tenants (portfolio-wide rows need every tenant), and
    recipient addresses only for a token that covers every tenant."""
    scope = Scope.of(claims)
    history = summarise_history(PrefectApi.from_environment(environ).read_delivery_tables()).as_json()
    return {"last_sent": scope.entries(history["last_sent"]), "failures": scope.entries(history["failures"])}

_VERIFIERS: dict[tuple, tuple[float, TokenVerifier]] = {}
VERIFIER_TTL_SECONDS = 600


def verifier(environ: Mapping[str, str]) -> TokenVerifier:
    """Kept for ten minutes per configuration: a warm Lambda does not fetch the secret on every
    request, and a rotated secret or replaced key file takes effect within the TTL."""
    keys = tuple(environ.get(name, "") for name in (
        "EXEC_REPORTS_JWT_ISSUER", "EXEC_REPORTS_JWT_AUDIENCE", "EXEC_REPORTS_JWT_JWKS_FILE",
        "EXEC_REPORTS_JWT_PUBLIC_KEY_FILE", "EXEC_REPORTS_JWT_HS256_SECRET_ID", "EXEC_REPORTS_JWT_LEEWAY_SECONDS"))
    cached = _VERIFIERS.get(keys)
    if cached is None or time.monotonic() - cached[0] > VERIFIER_TTL_SECONDS:
        cached = (time.monotonic(), load_verifier(environ, read_secret=lambda secret_id: read_secret_string(
            secret_id, key="EXEC_REPORTS_JWT_HS256_SECRET_ID")))
        _VERIFIERS[keys] = cached
    return cached[1]


def refuse(status: int, reason: str, request_id: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A 4xx answer, logged with its status, reason and request id, so refused calls (a probe, a client with
    an expired token) show in the logs. The reason is the handler's own words: never the token or a header."""
    log.warning("request %s refused: %s %s", request_id or "(no id)", status, reason)
    return respond(status, {"error": reason}, headers)


def respond(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json", **(headers or {})},
            "body": json.dumps(body, default=str)}


def _mode(environ: Mapping[str, str]) -> str:
    mode = environ.get("EXEC_REPORTS_HANDLER_MODE", "deployment")
    if mode not in ("deployment", "inline"):
        raise ConfigurationError(f"EXEC_REPORTS_HANDLER_MODE must be 'deployment' or 'inline', got {mode!r}")
    return mode
