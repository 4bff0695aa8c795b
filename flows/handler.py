"""``handler(event, context)``: start report runs from AWS (Lambda) or locally.

Events: EventBridge (scheduled or custom; parameters in ``detail``), SQS batches (one trigger per
message; failed messages come back in ``batchItemFailures``), and API Gateway requests, REST (v1) and
HTTP API (v2) payloads: ``POST .../run`` starts a run, ``GET .../status`` returns the last sends.
API requests need ``Authorization: Bearer <JWT>`` (see flows.auth). A response never carries a
stack trace: unexpected errors are logged here and answered with a request id.

Environment: EXEC_REPORTS_DEPLOYMENT (default send-exec-reports/weekly), EXEC_REPORTS_HANDLER_MODE
(``deployment``: start a deployment run and return its id; ``inline``: run the flow here and return
the summary), PREFECT_API_URL, and the EXEC_REPORTS_JWT_* settings of flows.auth.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from flows.auth import (
    AuthenticationError,
    PermissionDenied,
    TokenVerifier,
    authorise,
    load_verifier,
    scope_of,
)
from flows.config import SLUG
from flows.delivery.secrets import read_secret_string
from flows.errors import ConfigurationError
from flows.period import parse_period

log = logging.getLogger("exec_reports.handler")

DEFAULT_DEPLOYMENT = "send-exec-reports/weekly"


def _slug(value: str) -> str:
    if not re.match(SLUG, value):
        raise ValueError(f"{value!r} is not a role or tenant id (lower-case letters, digits, - and _)")
    return value


Slug = Annotated[str, AfterValidator(_slug)]


class TriggerRequest(BaseModel):
    """What a caller may ask for: the flow's parameters, nothing else."""

    model_config = ConfigDict(extra="forbid")
    roles: list[Slug] | None = Field(default=None, min_length=1)
    tenants: list[Slug] | None = Field(default=None, min_length=1)
    period: str | None = None
    period_kind: Literal["week", "month"] | None = None
    dry_run: bool = False

    @field_validator("period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        if value is not None:
            parse_period(value)  # raises with the accepted forms
        return value

    def parameters(self) -> dict[str, Any]:
        return {key: value for key, value in self.model_dump().items() if value is not None and value is not False}


class BadRequest(Exception):
    pass


def parse_trigger(payload: Any) -> TriggerRequest:
    if not isinstance(payload, Mapping):
        raise BadRequest("the body must be a JSON object like {\"roles\": [\"cfo\"], \"period\": \"2026-W47\"}")
    try:
        return TriggerRequest.model_validate(dict(payload))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        raise BadRequest(f"{where}: {message}") from None
    except ConfigurationError as exc:  # parse_period's message lists the accepted forms
        raise BadRequest(f"period: {exc}") from None


# ---- the entry point ---------------------------------------------------------------------------------


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    environ = os.environ
    if isinstance(event.get("Records"), list):
        return handle_sqs(event, environ)
    if "detail-type" in event and "source" in event:
        return handle_eventbridge(event, environ)
    if "httpMethod" in event or "http" in (event.get("requestContext") or {}):
        return handle_api(event, context, environ)
    raise ValueError("unrecognised event: expected an API Gateway request, an SQS batch or an EventBridge event")


def handle_eventbridge(event: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    request = parse_trigger(event.get("detail") or {})
    # A scheduled event's time is when the run was due: the flow derives its period from it.
    scheduled = _parse_time(event.get("time"))
    key = f"eventbridge-{event['id']}" if event.get("id") else None
    return start_run(request, environ, idempotency_key=key, scheduled_time=scheduled)


def handle_sqs(event: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    failures = []
    for record in event["Records"]:
        message_id = record.get("messageId", "")
        try:
            request = parse_trigger(json.loads(record.get("body") or ""))
            # SQS delivers at least once: the message id makes a redelivery start no second run.
            start_run(request, environ, idempotency_key=f"sqs-{message_id}")
        except (BadRequest, json.JSONDecodeError) as exc:
            log.error("SQS message %s rejected: %s", message_id, exc)
            failures.append({"itemIdentifier": message_id})
        except Exception:
            log.exception("SQS message %s could not start a run", message_id)
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def handle_api(event: Mapping[str, Any], context: Any, environ: Mapping[str, str]) -> dict[str, Any]:
    request_id = getattr(context, "aws_request_id", None) or (event.get("requestContext") or {}).get("requestId", "")
    try:
        method, path = _method_and_path(event)
        headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
        claims = verifier(environ).verify(headers.get("authorization"))
        if method == "GET" and path.rstrip("/").endswith("/status"):
            return respond(200, status_body(claims))
        if method == "POST" and path.rstrip("/").endswith("/run"):
            request = parse_trigger(_json_body(event))
            authorise(claims, request.roles, request.tenants)
            return respond(202 if _mode(environ) == "deployment" else 200, start_run(request, environ))
        return respond(404, {"error": f"no route for {method} {path}: use POST .../run or GET .../status"})
    except AuthenticationError as exc:
        return respond(401, {"error": str(exc)}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    except PermissionDenied as exc:
        return respond(403, {"error": str(exc)})
    except BadRequest as exc:
        return respond(400, {"error": str(exc)})
    except ConfigurationError as exc:
        log.error("handler misconfigured: %s", exc)
        return respond(500, {"error": "the trigger service is misconfigured; see its logs", "request_id": request_id})
    except Exception:
        log.exception("request %s failed", request_id)
        return respond(500, {"error": "internal error", "request_id": request_id})


# ---- actions -----------------------------------------------------------------------------------------


def start_run(request: TriggerRequest, environ: Mapping[str, str], *, idempotency_key: str | None = None,
              scheduled_time: dt.datetime | None = None) -> dict[str, Any]:
    from flows import flow as prefect_flow  # Prefect is imported only when a run is really started

    parameters = request.parameters()
    if _mode(environ) == "inline":
        return prefect_flow.run_inline(parameters, scheduled_time=scheduled_time)
    deployment = environ.get("EXEC_REPORTS_DEPLOYMENT", DEFAULT_DEPLOYMENT)
    return prefect_flow.trigger_deployment(deployment, parameters, idempotency_key=idempotency_key,
                                           scheduled_time=scheduled_time)


def status_body(claims: Mapping[str, Any]) -> dict[str, Any]:
    """Only what the token may see: its roles and tenants (portfolio-wide rows need every tenant), and
    recipient addresses only for a token that covers every tenant."""
    from flows.flow import fetch_delivery_tables
    from flows.history import summarise_history

    roles, tenants = scope_of(claims, "roles"), scope_of(claims, "tenants")

    def visible(entry: Mapping[str, Any]) -> bool:
        role_ok = roles is None or entry["report"] in roles
        tenant_ok = tenants is None or entry["tenant"] in tenants
        return role_ok and tenant_ok

    history = summarise_history(fetch_delivery_tables()).as_json()
    last_sent = [entry for entry in history["last_sent"] if visible(entry)]
    if tenants is not None:
        last_sent = [{k: v for k, v in entry.items() if k != "recipients"} for entry in last_sent]
    return {"last_sent": last_sent, "failures": [entry for entry in history["failures"] if visible(entry)]}


_VERIFIERS: dict[tuple, tuple[float, TokenVerifier]] = {}
VERIFIER_TTL_SECONDS = 600


def verifier(environ: Mapping[str, str]) -> TokenVerifier:
    """Kept for ten minutes per configuration: a warm Lambda does not fetch the secret on every
    request, and a rotated secret or replaced key file takes effect within the TTL."""
    keys = tuple(environ.get(name, "") for name in (
        "EXEC_REPORTS_JWT_ISSUER", "EXEC_REPORTS_JWT_AUDIENCE", "EXEC_REPORTS_JWT_JWKS_FILE",
        "EXEC_REPORTS_JWT_PUBLIC_KEY_FILE", "EXEC_REPORTS_JWT_HS256_SECRET_ID"))
    cached = _VERIFIERS.get(keys)
    if cached is None or time.monotonic() - cached[0] > VERIFIER_TTL_SECONDS:
        cached = (time.monotonic(), load_verifier(environ, read_secret=lambda secret_id: read_secret_string(
            secret_id, key="EXEC_REPORTS_JWT_HS256_SECRET_ID")))
        _VERIFIERS[keys] = cached
    return cached[1]


def respond(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json", **(headers or {})},
            "body": json.dumps(body, default=str)}


def _mode(environ: Mapping[str, str]) -> str:
    mode = environ.get("EXEC_REPORTS_HANDLER_MODE", "deployment")
    if mode not in ("deployment", "inline"):
        raise ConfigurationError(f"EXEC_REPORTS_HANDLER_MODE must be 'deployment' or 'inline', got {mode!r}")
    return mode


def _method_and_path(event: Mapping[str, Any]) -> tuple[str, str]:
    http = (event.get("requestContext") or {}).get("http")
    if http:  # HTTP API, payload 2.0
        return str(http.get("method", "")).upper(), str(http.get("path") or event.get("rawPath") or "")
    return str(event.get("httpMethod", "")).upper(), str(event.get("path") or "")


def _json_body(event: Mapping[str, Any]) -> Any:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the body is not valid base64-encoded UTF-8") from None
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
