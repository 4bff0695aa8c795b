"""The few Prefect REST API calls the trigger makes, with the standard library only.

The Lambda trigger (flows.trigger.handler in deployment mode) starts deployment runs and reads the delivery
tables without importing Prefect, whose dependency tree does not fit a Lambda zip. The calls are the
ones Prefect's own ``run_deployment`` makes (see prefect/server/api/deployments.py):

- ``GET /deployments/name/{flow}/{deployment}`` (or ``GET /deployments/{id}``) for the deployment id,
- ``POST /deployments/{id}/create_flow_run`` with the parameters, an idempotency key and a Scheduled
  state at the trigger's time,
- ``POST /artifacts/filter`` for the delivery-table artifacts (``GET .../status``).

Settings come from the environment as for Prefect itself: PREFECT_API_URL, PREFECT_API_KEY (Prefect
Cloud, sent as a bearer token) or PREFECT_API_AUTH_STRING (a self-hosted server behind basic auth),
PREFECT_UI_URL for the ``watch`` link (derived from the API URL when unset).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flows.core.errors import ConfigurationError, ReportError
from flows.orchestrator.history import DELIVERY_TABLE_KEY, DeliveryTable

PREFECT_CLOUD_API = "https://api.prefect.cloud/api"
PREFECT_CLOUD_UI = "https://app.prefect.cloud"
# Answers that mean "not processed, try again shortly"; anything else is not retried, so a run is
# never created twice by a retry of a request the server did handle.
RETRY_STATUSES = (429, 503)
ATTEMPTS = 3
MAX_RETRY_WAIT_SECONDS = 10.0


class PrefectApiError(ReportError):
    """The Prefect API could not be reached or answered with an error; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PrefectApi:
    url: str
    api_key: str | None = None
    auth_string: str | None = None
    ui_url: str | None = None
    timeout_seconds: float = 20.0

    def __repr__(self) -> str:  # never show the key
        return f"PrefectApi(url={self.url!r})"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> PrefectApi:
        """PREFECT_API_URL and friends from the environment (a Lambda function's configuration).

        Run locally without PREFECT_API_URL in the environment, the URL and key of the active Prefect
        profile are used when Prefect is installed; the Lambda zip has no Prefect, so there the
        variable is required."""
        url = (environ.get("PREFECT_API_URL") or "").strip()
        api_key = environ.get("PREFECT_API_KEY") or None
        auth_string = environ.get("PREFECT_API_AUTH_STRING") or None
        ui_url = environ.get("PREFECT_UI_URL") or None
        if not url:
            url, api_key, auth_string, ui_url = _from_prefect_profile(api_key, auth_string, ui_url)
        if not url:
            raise ConfigurationError("set PREFECT_API_URL to the Prefect API the trigger starts runs on "
                                     "(e.g. https://prefect.example.com/api, or your Prefect Cloud workspace's URL)")
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"PREFECT_API_URL must be an http(s) URL, got {url!r}")
        return cls(url.rstrip("/"), api_key, auth_string, ui_url)

    # ---- the calls -------------------------------------------------------------------------------------

    def read_deployment(self, name: str) -> dict[str, Any]:
        """A deployment by ``flow-name/deployment-name`` (or by id)."""
        if _is_uuid(name):
            path = f"/deployments/{name}"
        else:
            flow_name, slash, deployment_name = name.partition("/")
            if not slash or not flow_name or not deployment_name:
                raise ConfigurationError(f"EXEC_REPORTS_DEPLOYMENT must be 'flow-name/deployment-name' or a "
                                         f"deployment id, got {name!r}")
            path = (f"/deployments/name/{urllib.parse.quote(flow_name, safe='')}/"
                    f"{urllib.parse.quote(deployment_name, safe='')}")
        try:
            return self.request("GET", path)
        except PrefectApiError as exc:
            if exc.status == 404:
                raise ConfigurationError(f"deployment {name!r} does not exist on the Prefect API at {self.url} "
                                         f"(EXEC_REPORTS_DEPLOYMENT; `prefect deploy --all` creates it)") from None
            raise

    def start_deployment_run(self, name: str, parameters: Mapping[str, Any], *, idempotency_key: str | None = None,
                             scheduled_time: dt.datetime | None = None) -> dict[str, Any]:
        """Create a Scheduled flow run of the deployment and return without waiting for it, as
        ``prefect.deployments.run_deployment(..., timeout=0)`` does. A second call with the same
        ``idempotency_key`` returns the run the first one created."""
        deployment = self.read_deployment(name)
        when = (scheduled_time or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        body: dict[str, Any] = {
            "parameters": dict(parameters),
            "state": {"type": "SCHEDULED", "name": "Scheduled", "state_details": {"scheduled_time": when.isoformat()}},
        }
        if idempotency_key:
            body["idempotency_key"] = idempotency_key
        flow_run = self.request("POST", f"/deployments/{deployment['id']}/create_flow_run", body)
        state = flow_run.get("state") or {}
        return {"flow_run_id": str(flow_run["id"]), "flow_run_name": flow_run.get("name"), "deployment": name,
                "parameters": dict(parameters), "state": state.get("name"), "watch": self.run_url(flow_run["id"])}

    def read_delivery_tables(self, limit: int = 50) -> list[DeliveryTable]:
        """The delivery tables of the latest runs, newest first (what ``flows.flow.fetch_delivery_tables``
        reads through Prefect's client)."""
        artifacts = self.request("POST", "/artifacts/filter", {
            "artifacts": {"key": {"any_": [DELIVERY_TABLE_KEY]}}, "sort": "CREATED_DESC", "limit": limit})
        tables = []
        for artifact in artifacts or []:
            data = artifact.get("data")
            try:
                rows = json.loads(data) if isinstance(data, str) else data
                created = dt.datetime.fromisoformat(str(artifact.get("created")).replace("Z", "+00:00"))
            except ValueError:
                continue  # not a table this product wrote; the history shows the others
            if isinstance(rows, list):
                tables.append(DeliveryTable(created, str(artifact.get("flow_run_id")),
                                            [row for row in rows if isinstance(row, dict)]))
        return tables

    def run_url(self, flow_run_id: Any) -> str | None:
        ui_url = self.ui_url or derive_ui_url(self.url)
        return f"{ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}" if ui_url else None

    # ---- HTTP ------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json", "User-Agent": "exec-reports-trigger"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.auth_string:
            headers["Authorization"] = "Basic " + base64.b64encode(self.auth_string.encode("utf-8")).decode("ascii")
        elif self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        where = f"{method} {self.url}{path}"
        for attempt in range(1, ATTEMPTS + 1):
            request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                    payload = response.read()
                return json.loads(payload) if payload else None
            except urllib.error.HTTPError as exc:
                detail = _error_detail(exc)
                if exc.code in RETRY_STATUSES and attempt < ATTEMPTS:
                    time.sleep(_retry_wait(exc, attempt))
                    continue
                if exc.code in (401, 403):
                    raise ConfigurationError(f"the Prefect API refused the trigger's credentials ({where}: HTTP "
                                             f"{exc.code}); check PREFECT_API_KEY or PREFECT_API_AUTH_STRING") from None
                raise PrefectApiError(f"{where}: HTTP {exc.code}: {detail}", exc.code) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, ConnectionRefusedError) and attempt < ATTEMPTS:
                    time.sleep(_retry_wait(None, attempt))  # refused: nothing was processed
                    continue
                raise PrefectApiError(f"cannot reach the Prefect API ({where}): {reason}") from None
            except json.JSONDecodeError:
                raise PrefectApiError(f"{where}: the answer is not JSON (is PREFECT_API_URL the API, "
                                      f"ending in /api?)") from None
        raise AssertionError("unreachable")  # pragma: no cover


def derive_ui_url(api_url: str) -> str | None:
    """The UI URL for an API URL, as Prefect derives it: strip ``/api`` for a self-hosted server;
    app.prefect.cloud's /account/.../workspace/... for Prefect Cloud."""
    ui_url = api_url.rstrip("/")
    if ui_url.startswith(PREFECT_CLOUD_API):
        ui_url = PREFECT_CLOUD_UI + ui_url[len(PREFECT_CLOUD_API):]
    elif ui_url.endswith("/api"):
        ui_url = ui_url[:-4]
    ui_url = ui_url.replace("/api/", "/").replace("/accounts/", "/account/").replace("/workspaces/", "/workspace/")
    return ui_url or None


def _from_prefect_profile(api_key: str | None, auth_string: str | None,
                          ui_url: str | None) -> tuple[str, str | None, str | None, str | None]:
    try:
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL, PREFECT_UI_URL
    except ImportError:  # the Lambda zip: no Prefect, the environment must say where the API is
        return "", api_key, auth_string, ui_url
    return (PREFECT_API_URL.value() or "", api_key or _plain(PREFECT_API_KEY.value()),
            auth_string or _plain(PREFECT_API_AUTH_STRING.value()), ui_url or PREFECT_UI_URL.value())


def _plain(value: Any) -> str | None:
    """A Prefect setting's value; secret settings come wrapped in a SecretStr."""
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read().decode("utf-8", "replace")
    except OSError:
        return exc.reason or ""
    try:
        detail = json.loads(raw).get("detail", raw)
    except (ValueError, AttributeError):
        detail = raw
    return str(detail)[:500]


def _retry_wait(exc: urllib.error.HTTPError | None, attempt: int) -> float:
    retry_after = exc.headers.get("Retry-After") if exc is not None and exc.headers else None
    try:
        wait = float(retry_after) if retry_after else float(attempt)
    except ValueError:
        wait = float(attempt)
    return min(max(wait, 0.0), MAX_RETRY_WAIT_SECONDS)
