"""`exec-reports run` as a user meets it: no PREFECT_API_URL, a fresh PREFECT_HOME, a run killed with
SIGKILL in the middle, and the next run. One test, because the local server's start is the slow part."""

from __future__ import annotations

import email
import json
import os
import re
import signal
import subprocess
import sys
import time
from email import policy
from pathlib import Path

import httpx

from flows.operate.local_server import LOCAL_RUNS_FOLDER, server_status, stop_server

EXEC_REPORTS = str(Path(sys.executable).parent / "exec-reports")


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid``, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _processes_using(home: Path) -> set[int]:
    """Live processes whose environment points PREFECT_HOME at ``home``."""
    needle = f"PREFECT_HOME={home}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0") and _alive(int(entry.name)):
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_a_killed_run_leaves_no_process_is_marked_crashed_and_the_next_run_works(portfolio_copy, tmp_path):
    home = tmp_path / "prefect-home"
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("PREFECT_", "EXEC_REPORTS_")) and name != "DO_NOT_TRACK"}
    env["PREFECT_HOME"] = str(home)  # telemetry: nothing said, so the project's default (off) applies
    command = [EXEC_REPORTS, "run", "--config", str(portfolio_copy), "--dry-run"]
    try:
        # 1. A cold start: the server is started in the background and the run goes ahead (never a time-out).
        killed = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        markers = home / LOCAL_RUNS_FOLDER
        marker = _wait_for(lambda: next(iter(markers.glob("*.json")), None) if markers.is_dir() else None,
                           600, "the run to start")
        flow_run_id = marker.stem
        server = server_status(home)
        assert server.state == "running", server
        processes = _children(killed.pid) - {server.info.pid}
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=30)

        # 2. Nothing of the killed run survives; the server the next run reuses does.
        _wait_for(lambda: not any(_alive(pid) for pid in processes), 10, "the killed run's processes to end")
        assert _alive(server.info.pid)
        server_group = {pid for pid in _processes_using(home) if os.getpgid(pid) == server.info.pid}
        assert _processes_using(home) == server_group, "a process of the killed run outlived it"

        # 3. The next run marks the killed one Crashed, alerts operations, and works; same period as `check`.
        after = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert after.returncode == 0, after.stdout + after.stderr
        assert "was killed before it finished: marked Crashed" in after.stderr
        assert server_status(home).info.pid == server.info.pid  # reused, not started again
        assert "starting the local Prefect server" not in after.stderr
        link = re.search(r"see it in the Prefect UI: (http://127\.0\.0\.1:\d+/runs/flow-run/[0-9a-f-]{36})",
                         after.stdout)
        assert link, after.stdout
        run = httpx.get(f"{server.info.api_url}/flow_runs/{flow_run_id}", timeout=30).json()
        assert run["state"]["type"] == "CRASHED", run["state"]
        assert "was killed" in run["state"]["message"]
        assert not list(markers.glob("*.json"))

        [alert] = (tmp_path / "outbox").glob("*/portfolio-operations-alert--*.eml")
        message = email.message_from_bytes(alert.read_bytes(), policy=policy.default)
        period = re.search(r"exec-reports · period (\S+)", after.stdout).group(1)
        assert message["Subject"] == f"[exec-reports] run Crashed: {period} all roles (dry run)"
        # The crashed run left no summary; its alert still names the period (it said period=unknown).
        assert message["X-Exec-Reports-Report"] == f"operations-alert; tenant=portfolio; period={period}"
        text = message.get_body(("plain",)).get_content()
        assert "delivery table artifact" not in text and "left no summary or delivery table" in text

        # Telemetry is off in the server the CLI started, and `history` (it printed Prefect's "Failed to send
        # telemetry" errors and once an aiosqlite traceback) reads that server and prints only its tables.
        server_env = dict(item.split("=", 1) for item in
                          Path(f"/proc/{server.info.pid}/environ").read_bytes().decode().split("\0") if "=" in item)
        assert (server_env["PREFECT_SERVER_ANALYTICS_ENABLED"], server_env["DO_NOT_TRACK"]) == ("false", "1")
        # With the server up, `history` reads it and starts no server of its own: Prefect's temporary one is
        # refused here (it would fail the command), and the local server is the same process as before.
        history = subprocess.run([EXEC_REPORTS, "history", "--config", str(portfolio_copy)], cwd=tmp_path,
                                 env={**env, "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false"},
                                 capture_output=True, text=True, timeout=300)
        assert history.returncode == 0, history.stdout + history.stderr
        assert history.stderr == ""
        assert history.stdout.startswith("Last successful send per report and tenant\n")
        assert server_status(home).info.pid == server.info.pid

        check = subprocess.run([EXEC_REPORTS, "check", "--config", str(portfolio_copy)], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=300)
        assert f"rendered for {period} against" in check.stdout, check.stdout + check.stderr

        summary = subprocess.run([*command, "--json"], env=env, cwd=tmp_path, capture_output=True, text=True,
                                 timeout=600)
        data = json.loads(summary.stdout)
        assert data["period"] == period and data["flow_run"]["state"] == "Completed"
    finally:
        stopped = stop_server(home)
    assert stopped
    assert server_status(home).state == "stopped"
