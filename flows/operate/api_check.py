"""Is the Prefect API a command is about to use there, and new enough? Asked over plain HTTP before
Prefect is imported, so a wrong ``PREFECT_API_URL`` ends in one line instead of Prefect's chained
tracebacks (114 lines for a port where nothing listens)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from importlib.metadata import version as installed_version

from flows.core.errors import ConfigurationError

# pyproject.toml's floor for Prefect; a server older than this (or of another major version) cannot
# serve this client.
MINIMUM_SERVER_VERSION = "3.1"
WHAT_TO_DO = ("start that server, or unset PREFECT_API_URL (and the active Prefect profile's) so that "
              "`exec-reports` uses the local server it starts itself")


_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_DEFAULT = urllib.request.build_opener()


def _get(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url)
    if key := os.environ.get("PREFECT_API_KEY"):
        request.add_header("Authorization", f"Bearer {key}")
    # Loopback needs no proxy: one configured for the outside world must not see (or break) these requests.
    opener = _LOOPBACK if urllib.parse.urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1") else _DEFAULT
    with opener.open(request, timeout=timeout) as response:
        return response.read()


def check_prefect_api(api_url: str, timeout: float = 10.0) -> None:
    """Raise ConfigurationError, saying what to do, when the API does not answer or its server is too old."""
    base = api_url.rstrip("/")
    if ".prefect.cloud" in base:  # Prefect Cloud serves every client version
        return
    try:
        _get(f"{base}/health", timeout)
        answer = _get(f"{base}/admin/version", timeout)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ConfigurationError(f"the Prefect API at {api_url} does not answer ({reason}): {WHAT_TO_DO}") from None
    try:
        server = str(json.loads(answer))
    except ValueError:
        server = answer.decode(errors="replace").strip()
    from packaging.version import InvalidVersion, Version

    client = installed_version("prefect")
    try:
        too_old = (Version(server).major != Version(client).major
                   or Version(server) < Version(MINIMUM_SERVER_VERSION))
    except InvalidVersion:
        too_old = True
    if too_old:
        raise ConfigurationError(
            f"the Prefect server at {api_url} runs Prefect {server or '(unknown)'}, too old for this client "
            f"(Prefect {client}; needs a server of version {MINIMUM_SERVER_VERSION} or later, same major "
            f"version): upgrade that server, or point PREFECT_API_URL at a newer one")
