"""What a trigger asks for, parsed and checked before anything starts: ``parse_trigger`` turns an event's
JSON (roles, tenants, period, period_kind, dry_run) into a ``TriggerRequest`` or raises ``BadRequest``
saying which key is wrong; the API Gateway helpers read the method, path, headers and body of REST (v1)
and HTTP API (v2) payloads. Standard library only (the Lambda zip)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flows.core.errors import ConfigurationError
from flows.core.identifiers import is_slug
from flows.core.period import parse_period

PERIOD_KINDS = ("week", "month")
TRIGGER_KEYS = ("roles", "tenants", "period", "period_kind", "dry_run")
EXAMPLE_BODY = '{"roles": ["cfo"], "period": "2026-W47"}'


@dataclass(frozen=True)
class TriggerRequest:
    """What a caller may ask for: the flow's parameters, nothing else (None: the flow's default)."""

    roles: list[str] | None = None
    tenants: list[str] | None = None
    period: str | None = None
    period_kind: str | None = None
    dry_run: bool = False

    def parameters(self) -> dict[str, Any]:
        values = {"roles": self.roles, "tenants": self.tenants, "period": self.period,
                  "period_kind": self.period_kind, "dry_run": self.dry_run}
        return {key: value for key, value in values.items() if value is not None and value is not False}


class BadRequest(Exception):
    pass


def parse_trigger(payload: Any) -> TriggerRequest:
    """Checks a trigger's parameters with the standard library only (the Lambda zip has no pydantic).
    The first problem is reported, naming its key (``roles.0``) and the value."""
    if not isinstance(payload, Mapping):
        raise BadRequest(f"the body must be a JSON object like {EXAMPLE_BODY}")
    unknown = [key for key in payload if key not in TRIGGER_KEYS]
    if unknown:
        raise BadRequest(f"{_key_name(unknown[0])}: unknown key (a trigger takes {', '.join(TRIGGER_KEYS)})")
    return TriggerRequest(roles=_ids(payload, "roles", "role"), tenants=_ids(payload, "tenants", "tenant"),
                          period=_period(payload.get("period")), period_kind=_period_kind(payload.get("period_kind")),
                          dry_run=_dry_run(payload.get("dry_run", False)))


def _key_name(key: Any) -> str:
    return key if isinstance(key, str) and key.strip() and key.isprintable() else f"key {key!r}"


def _ids(payload: Mapping[str, Any], key: str, what: str) -> list[str] | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequest(f"{key}: expected a list of {what} ids like [\"{'cfo' if what == 'role' else 'jada'}\"], "
                         f"got {_shown(value)}")
    if not value:
        raise BadRequest(f"{key}: name at least one {what}, or leave {key} out for all of them")
    for index, item in enumerate(value):
        if not is_slug(item):
            raise BadRequest(f"{key}.{index}: {_shown(item)} is not a role or tenant id "
                             f"(lower-case letters, digits, - and _, at most 63 characters)")
    return list(value)


def _period(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"period: expected an ISO week like 2026-W47 or a month like 2026-11, got {_shown(value)}")
    try:
        return parse_period(value).label
    except ConfigurationError as exc:  # parse_period's message lists the accepted forms
        raise BadRequest(f"period: {exc}") from None


def _period_kind(value: Any) -> str | None:
    if value is not None and value not in PERIOD_KINDS:
        raise BadRequest(f"period_kind: expected 'week' or 'month', got {_shown(value)}")
    return value


def _dry_run(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"dry_run: expected true or false, got {_shown(value)}")
    return value


def _shown(value: Any, limit: int = 60) -> str:
    """A value for an error message: its JSON form, cut short (a body can be large)."""
    try:
        text = json.dumps(value) if not isinstance(value, str) else repr(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# ---- the entry point ---------------------------------------------------------------------------------


def _method_and_path(event: Mapping[str, Any]) -> tuple[str, str]:
    request_context = event.get("requestContext")
    if request_context is not None and not isinstance(request_context, Mapping):
        raise BadRequest("requestContext must be an object")
    http = (request_context or {}).get("http")
    if http is not None:  # HTTP API, payload 2.0
        if not isinstance(http, Mapping):
            raise BadRequest("requestContext.http must be an object")
        method, path = http.get("method"), http.get("path") or event.get("rawPath") or ""
    else:
        method, path = event.get("httpMethod"), event.get("path") or ""
    if not isinstance(method, str) or not isinstance(path, str):
        raise BadRequest("the request's method and path must be text")
    return method.upper(), path


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    headers = event.get("headers")
    if headers is None:
        return {}
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise BadRequest("headers must be an object of text values")
    return {str(name).lower(): value for name, value in headers.items()}


def _json_body(event: Mapping[str, Any]) -> Any:
    """The request's JSON payload; an absent or blank body is ``{}`` (the token's whole scope), but a
    body that is there and cannot be read is a 400, never an empty request."""
    body = event.get("body")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise BadRequest("the body must be text")
    if event.get("isBase64Encoded") is True:
        try:
            body = base64.b64decode(body.encode("ascii"), validate=True).decode("utf-8")
        except (ValueError, UnicodeError):
            raise BadRequest("the body is marked isBase64Encoded but is not valid base64-encoded UTF-8") from None
    elif event.get("isBase64Encoded") not in (None, False):
        raise BadRequest("isBase64Encoded must be true or false")
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadRequest("the body is nested too deeply") from None


def parse_event_time(value: Any) -> dt.datetime | None:
    """An EventBridge event's ``time`` (ISO 8601 with a zone, e.g. 2026-11-23T15:00:00Z); absent is None
    (the run is due now). Anything else is refused: a wrong time would report on the wrong period."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"time: expected an ISO 8601 timestamp like 2026-11-23T15:00:00Z, got {value!r}")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"time: {value!r} is not an ISO 8601 timestamp like 2026-11-23T15:00:00Z") from None
    if parsed.tzinfo is None:
        raise BadRequest(f"time: {value!r} has no time zone (EventBridge sends UTC with a Z)")
    return parsed
