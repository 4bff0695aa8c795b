"""The long-lived local Prefect server that ``exec-reports run`` (and ``make run``) uses when no
``PREFECT_API_URL`` is configured, and the markers that let the next run find a run that was killed.

Why not Prefect's own temporary server: it starts one per command and gives it 20 s, which a first start
(it migrates its database) or a busy 2-core machine exceeds, so the run fails; and a run killed with
SIGKILL leaves that server running as an orphan. Here the server is started once in the background
under the project's ``PREFECT_HOME``, waited for with a generous limit and a progress line, and reused
by every later command until ``exec-reports server stop``. Its process and port are recorded in
``$PREFECT_HOME/exec-reports-server.json``.

This module does not import Prefect: it starts ``prefect server start`` as a separate process and talks
to it over HTTP, so the CLI decides where the API is before Prefect reads its settings.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from flows.core.errors import ConfigurationError
from flows.core.telemetry import apply_telemetry_setting
from flows.orchestrator.local_runs import LocalRunMarkers

SERVER_STATE_FILE = "exec-reports-server.json"
SERVER_LOG_FILE = "exec-reports-server.log"
LOCAL_RUNS_FOLDER = "exec-reports-local-runs"
# Set by `exec-reports run` for the flow it runs in-process: the folder for that run's marker.
# The local server's preferred port (Prefect's default); another free port when it is taken.
PREFERRED_PORT = 4200
# A first start on a busy machine took 30-60 s in practice; minutes are cheap next to a failed run.
DEFAULT_START_TIMEOUT_SECONDS = 600.0


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser().resolve()


def configured_api_url(home: Path | None = None) -> str | None:
    """The Prefect API the user configured (environment, or the active profile in PREFECT_HOME), if any.

    Read without importing Prefect: only the two places a local user sets it, and, when Prefect is already
    imported in this process (a test harness, an embedding program), its current settings."""
    if url := os.environ.get("PREFECT_API_URL"):
        return url
    if "prefect.settings" in sys.modules:
        from prefect.settings import PREFECT_API_URL

        if url := PREFECT_API_URL.value():
            return url
    profiles = (home or prefect_home()) / "profiles.toml"
    try:
        data = tomllib.loads(profiles.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or data.get("active")
    profile = data.get("profiles", {}).get(active or "", {})
    return profile.get("PREFECT_API_URL") or None


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    port: int
    started_at: str
    home: str

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return Path(self.home) / SERVER_LOG_FILE


@dataclass(frozen=True)
class ServerStatus:
    state: str  # "running" | "starting" | "stopped"
    info: ServerInfo | None = None

    def describe(self) -> str:
        if self.info is None or self.state == "stopped":
            return "the local Prefect server is not running"
        return (f"the local Prefect server is {self.state}: {self.info.ui_url} (pid {self.info.pid}, "
                f"since {self.info.started_at}, log {self.info.log_path})")


def _state_path(home: Path) -> Path:
    return home / SERVER_STATE_FILE


def _read_info(home: Path) -> ServerInfo | None:
    try:
        return ServerInfo(**json.loads(_state_path(home).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _is_our_server(pid: int) -> bool:
    """True while ``pid`` is alive and is a ``prefect server start`` (a reused pid is not ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            os.kill(pid, 0)  # no /proc (macOS): trust the pid
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return b"server" in cmdline and any(part.endswith(b"prefect") for part in cmdline)


# Loopback only: a proxy configured for the outside world must not see (or break) these requests.
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _healthy(info: ServerInfo, timeout: float = 2.0) -> bool:
    try:
        with _LOOPBACK.open(f"{info.api_url}/health", timeout=timeout) as response:
            return response.status == 200 and response.read().strip() == b"true"
    except (OSError, urllib.error.URLError, ValueError):
        return False


def server_status(home: Path | None = None) -> ServerStatus:
    home = home or prefect_home()
    info = _read_info(home)
    if info is None or not _is_our_server(info.pid):
        return ServerStatus("stopped")
    return ServerStatus("running" if _healthy(info) else "starting", info)


@contextmanager
def _start_lock(home: Path) -> Iterator[None]:
    """Two commands started at once share one server instead of each starting its own."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / f"{SERVER_STATE_FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _free_port() -> int:
    for port in (PREFERRED_PORT, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise ConfigurationError("no free TCP port on 127.0.0.1 for the local Prefect server")


def _prefect_command() -> list[str]:
    script = Path(sys.executable).parent / "prefect"
    return [str(script)] if script.exists() else [sys.executable, "-m", "prefect"]


def ensure_server(home: Path | None = None, *, timeout: float = DEFAULT_START_TIMEOUT_SECONDS,
                  progress: Callable[[str], None] = lambda line: None) -> ServerInfo:
    """The running local server, started in the background first when there is none.

    Waits up to ``timeout`` seconds for its health check, printing a progress line through ``progress``
    while it starts. Raises ConfigurationError (with the server log's tail) only when the server process
    exits or never answers within the limit."""
    home = home or prefect_home()
    with _start_lock(home):
        status = server_status(home)
        if status.state == "running":
            return status.info
        process = None
        if status.state == "stopped":
            info, process = _spawn(home)
            first_start = not (home / "prefect.db").exists() or (home / "prefect.db").stat().st_size == 0
            progress("starting the local Prefect server" + (" (first start prepares its database)" if first_start
                                                             else "") + f" at {info.ui_url}…")
        else:
            info = status.info
            progress(f"waiting for the local Prefect server to finish starting at {info.ui_url}…")
        _wait_until_healthy(info, timeout, progress, process)
        return info


def _spawn(home: Path) -> tuple[ServerInfo, subprocess.Popen]:
    port = _free_port()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("PREFECT_API_URL", "PREFECT_UI_URL", "PREFECT_PROFILE"))}
    apply_telemetry_setting(env)
    env.update({"PREFECT_HOME": str(home), "PREFECT_SERVER_API_HOST": "127.0.0.1",
                "PREFECT_SERVER_API_PORT": str(port)})
    log = (home / SERVER_LOG_FILE).open("ab")
    log.write(f"\n--- exec-reports: starting prefect server on port {port} at {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}Z\n"
              .encode())
    log.flush()
    # Its own session: the server outlives this command (that is the point) and a Ctrl-C in the
    # terminal that ran `make run` does not reach it.
    process = subprocess.Popen([*_prefect_command(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=home, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    log.close()
    info = ServerInfo(pid=process.pid, port=port, home=str(home),
                      started_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    temporary = _state_path(home).with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(info), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, _state_path(home))
    return info, process


def _wait_until_healthy(info: ServerInfo, timeout: float, progress: Callable[[str], None],
                        process: subprocess.Popen | None) -> None:
    started = time.monotonic()
    next_note = started + 30
    while not _healthy(info):
        # The process we just started is watched directly: until it execs, /proc shows our own command line.
        if (process.poll() is not None) if process else not _is_our_server(info.pid):
            raise ConfigurationError(f"the local Prefect server stopped while starting; the end of its log "
                                     f"({info.log_path}):\n{_log_tail(info)}")
        now = time.monotonic()
        if now - started > timeout:
            raise ConfigurationError(
                f"the local Prefect server did not answer within {timeout:.0f} s (it is still starting, pid "
                f"{info.pid}; run the command again to keep waiting, or `exec-reports server stop`); the end of "
                f"its log ({info.log_path}):\n{_log_tail(info)}")
        if now >= next_note:
            progress(f"  still starting ({now - started:.0f} s)…")
            next_note = now + 30
        time.sleep(0.25)


def _log_tail(info: ServerInfo, characters: int = 2000) -> str:
    try:
        return info.log_path.read_text(encoding="utf-8", errors="replace")[-characters:]
    except OSError:
        return "(no log)"


def stop_server(home: Path | None = None, timeout: float = 20.0) -> bool:
    """Stop the local server (and whatever it started); False when none was running."""
    home = home or prefect_home()
    with _start_lock(home):
        info = _read_info(home)
        running = info is not None and _is_our_server(info.pid)
        if running:
            _terminate_group(info.pid, timeout)
        _state_path(home).unlink(missing_ok=True)
        return running


def _terminate_group(pid: int, timeout: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def local_run_markers(home: Path | None = None) -> LocalRunMarkers:
    return LocalRunMarkers((home or prefect_home()) / LOCAL_RUNS_FOLDER)
