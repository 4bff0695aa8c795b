"""Prefect's usage telemetry (its server's analytics and its client's SDK events): off in every command
the project starts unless ``EXEC_REPORTS_TELEMETRY=on``. Off because these machines (CI, a laptop on a
plane, a locked-down worker) often have no route out, and then Prefect prints "Failed to send
telemetry" errors among the run's own lines.

Applied before Prefect is imported: Prefect reads these variables when it loads."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

TELEMETRY_ENV = "EXEC_REPORTS_TELEMETRY"
SERVER_ANALYTICS = "PREFECT_SERVER_ANALYTICS_ENABLED"
CLIENT_OPT_OUT = "DO_NOT_TRACK"  # the cross-tool convention Prefect's client honours


def telemetry_on(environ: MutableMapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get(TELEMETRY_ENV, "").strip().lower() in ("on", "1", "true", "yes")


def telemetry_environment(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """The variables a Prefect process (this one, a server, a worker) gets; "" means: leave it unset."""
    if telemetry_on(environ):
        return {SERVER_ANALYTICS: "true", CLIENT_OPT_OUT: ""}
    return {SERVER_ANALYTICS: "false", CLIENT_OPT_OUT: "1"}


def apply_telemetry_setting(environ: MutableMapping[str, str] | None = None) -> None:
    """Set (or clear) the variables in ``environ`` (default: this process's environment)."""
    environ = os.environ if environ is None else environ
    for name, value in telemetry_environment(environ).items():
        if value:
            environ[name] = value
        else:
            environ.pop(name, None)
