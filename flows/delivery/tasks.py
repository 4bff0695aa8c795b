"""Hand the reports' agenda items to a task system: one POST per action and period, never twice.

Each action gets a stable id from (period, tenant, owner, text), sent as the payload's ``id`` and as
the ``Idempotency-Key`` header, and recorded in the delivery record store (backend ``tasks``) right
after the endpoint accepts it, so a re-run of the period posts nothing new. Timeouts, connection
errors, 429 and 5xx are retried with jittered backoff; any other answer fails that action at once.
Failures are listed in the run summary; they never fail the reports that were delivered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any

from flows.core.config import PortfolioConfig, TasksConfig
from flows.core.errors import ConfigurationError
from flows.core.secrets import Secret, resolve_secret
from flows.delivery.records import (
    DEFAULT_LEASE_SECONDS,
    DeliveryKey,
    Record,
    RecordStore,
    now_utc,
    timestamp_now,
    unknown_state_reason,
)
from flows.templating.agenda import ACTION_PRIORITIES as PRIORITIES

log = logging.getLogger("exec_reports")

BACKEND_NAME = "tasks"
RETRY_DELAYS_SECONDS = (0.5, 2.0, 5.0, 10.0, 20.0, 30.0, 30.0, 30.0, 30.0)


def action_id(period: str, action: dict[str, Any]) -> str:
    """The same action in the same period has the same id, whichever report lists it."""
    identity = [period, action.get("tenant", ""), action.get("owner", ""), " ".join(str(action["text"]).split()).lower()]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]


def record_key(period: str, action: dict[str, Any], identifier: str) -> DeliveryKey:
    # An action posted to the task system is a delivery whose "recipient" is the action's id.
    return DeliveryKey(period, str(action.get("tenant", "")), f"action-{action.get('owner', '')}", "", identifier)


@dataclass
class HandOff:
    posted: list[str] = field(default_factory=list)
    already_posted: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"posted": len(self.posted), "already_posted": len(self.already_posted), "failed": self.failed}


def tasks_token(settings: TasksConfig) -> Secret:
    token = resolve_secret(env_var=settings.token_env, secret_id=settings.token_secret_id,
                           secret_id_key="tasks.token_secret_id", region=settings.secrets_region,
                           endpoint_url=settings.secrets_endpoint_url)
    if token is not None:
        return token
    raise ConfigurationError(f"tasks: set the environment variable {settings.token_env} or tasks.token_secret_id "
                             "to the task system's bearer token")


def payload(period: str, action: dict[str, Any], identifier: str) -> dict[str, Any]:
    return {"id": identifier, "period": period, "title": action["text"], "owner_role": action.get("owner"),
            "tenant": action.get("tenant"), "priority": action.get("priority", "medium"),
            "due": action.get("due") or None,
            "source": {"report": action.get("report"), "heading": action.get("heading")}}


def hand_off_actions(actions: list[dict[str, Any]], period: str, config: PortfolioConfig, store: RecordStore, *,
                     run: str, resend: bool = False, client=None, sleep=time.sleep) -> HandOff:
    import httpx

    settings = config.tasks
    result = HandOff()
    if settings is None or not actions:
        return result
    threshold = PRIORITIES.index(settings.min_priority)
    unique: dict[str, dict[str, Any]] = {}
    for action in actions:
        if PRIORITIES.index(action.get("priority", "medium")) <= threshold:
            unique.setdefault(action_id(period, action), action)
    try:
        token = tasks_token(settings)
    except ConfigurationError as exc:
        result.failed = [{"id": i, "text": a["text"], "reason": str(exc)} for i, a in unique.items()]
        return result
    own_client = client is None
    client = client or httpx.Client(timeout=settings.timeout_seconds)
    try:
        for identifier, action in unique.items():
            try:
                outcome = _hand_off_one(client, settings, token, store, period, action, identifier, run=run,
                                        resend=resend, sleep=sleep)
            except Exception as exc:  # a broken record store must not stop the other actions
                outcome = f"{type(exc).__name__}: {token.redact(str(exc))}"
            if outcome == "posted":
                result.posted.append(identifier)
            elif outcome == "already":
                result.already_posted.append(identifier)
            else:
                log.error("action %s (%s) not handed off: %s", identifier, action["text"][:60], outcome)
                result.failed.append({"id": identifier, "text": action["text"], "reason": outcome})
    finally:
        if own_client:
            client.close()
    return result


def _hand_off_one(client, settings: TasksConfig, token: Secret, store: RecordStore, period: str,
                  action: dict[str, Any], identifier: str, *, run: str, resend: bool, sleep) -> str:
    """'posted', 'already', or why the action was not handed off."""
    key = record_key(period, action, identifier)
    current = store.get(BACKEND_NAME, key)
    if current is not None and not resend:
        if current.state == "sent":
            return "already"
        if current.state in ("sending", "unknown"):
            return unknown_state_reason(current)
    lease_until = (now_utc() + dt.timedelta(seconds=DEFAULT_LEASE_SECONDS)).isoformat(timespec="milliseconds")
    marker = Record(key, "sending", BACKEND_NAME, run, timestamp_now(), lease_until=lease_until)
    version = store.write(marker, current.version if current else None)
    if version is None:
        return "already"
    error = _post(client, settings, token, payload(period, action, identifier), sleep)
    if store.write(replace(marker, state="failed" if error else "sent", updated_at=timestamp_now(), lease_until="",
                           reason=error or "", location=settings.url), version) is None:
        log.error("action %s: its record was replaced by another run meanwhile", identifier)
    return error or "posted"


def _post(client, settings: TasksConfig, token: Secret, body: dict[str, Any], sleep) -> str | None:
    """None when the endpoint accepted the action, else why not (without the token)."""
    import httpx

    headers = {"Authorization": f"Bearer {token.reveal()}", "Idempotency-Key": body["id"],
               "Content-Type": "application/json"}
    reason = ""
    for attempt in range(settings.attempts):
        try:
            response = client.post(settings.url, content=json.dumps(body), headers=headers,
                                   timeout=settings.timeout_seconds)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            reason = f"{type(exc).__name__}: {token.redact(str(exc))}"
        else:
            if response.status_code < 300:
                return None
            reason = f"HTTP {response.status_code}: {token.redact(response.text[:200])}"
            if response.status_code != 429 and response.status_code < 500:
                return reason  # the endpoint refused this action: retrying will not change that
        if attempt + 1 < settings.attempts:
            sleep(RETRY_DELAYS_SECONDS[attempt] * random.uniform(0.5, 1.5))
    return f"gave up after {settings.attempts} attempts: {reason}"
