"""Prefect's telemetry is off in every command the project starts unless EXEC_REPORTS_TELEMETRY=on (issue 28:
`exec-reports history` printed "Failed to send telemetry: Name or service not known")."""

from __future__ import annotations

import subprocess
import sys

from flows.core.telemetry import apply_telemetry_setting, telemetry_environment


def test_telemetry_is_off_unless_the_setting_turns_it_on():
    assert telemetry_environment({}) == {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    # The project's own default wins over an analytics switch inherited from elsewhere.
    inherited = {"PREFECT_SERVER_ANALYTICS_ENABLED": "true"}
    apply_telemetry_setting(inherited)
    assert inherited == {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    on = {"EXEC_REPORTS_TELEMETRY": "on", "DO_NOT_TRACK": "1"}
    apply_telemetry_setting(on)
    assert on == {"EXEC_REPORTS_TELEMETRY": "on", "PREFECT_SERVER_ANALYTICS_ENABLED": "true"}


def test_the_cli_turns_telemetry_off_before_prefect_loads_and_on_when_asked():
    code = ("import os, sys; from flows.operate.cli import main; main(['metrics']); "
            "print(os.environ.get('PREFECT_SERVER_ANALYTICS_ENABLED'), os.environ.get('DO_NOT_TRACK'))")
    for setting, expected in (("", "false 1"), ("on", "true None")):
        env = {"PATH": "/usr/bin:/bin", "EXEC_REPORTS_TELEMETRY": setting}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert result.stdout.splitlines()[-1] == expected


def test_the_local_server_and_the_test_servers_get_the_same_setting(tmp_path, monkeypatch):
    from flows.devtools.prefect_server import LocalPrefectServer

    monkeypatch.delenv("EXEC_REPORTS_TELEMETRY", raising=False)
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "true")
    env = LocalPrefectServer(tmp_path).client_env()
    assert (env["PREFECT_SERVER_ANALYTICS_ENABLED"], env["DO_NOT_TRACK"]) == ("false", "1")
    monkeypatch.setenv("EXEC_REPORTS_TELEMETRY", "on")
    env = LocalPrefectServer(tmp_path).client_env()
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "true" and "DO_NOT_TRACK" not in env
