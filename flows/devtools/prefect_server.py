"""Start a real ``prefect server`` for tests and benchmarks, on its own PostgreSQL database.

Falls back to SQLite where no PostgreSQL is reachable and says so. Everything it starts is stopped
and the database dropped by ``stop()``, also after a failure.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from flows.core.telemetry import apply_telemetry_setting

PREFECT = str(Path(sys.executable).parent / "prefect")
POSTGRES_ADMIN_DSN_ENV = "EXEC_REPORTS_TEST_POSTGRES"
DEFAULT_POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
FINAL_STATE_TYPES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def admin_dsn() -> str:
    return os.environ.get(POSTGRES_ADMIN_DSN_ENV, DEFAULT_POSTGRES_ADMIN_DSN)


def _postgres(statement: str) -> None:
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(admin_dsn(), timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def create_postgres_database(prefix: str) -> str | None:
    """A fresh database; None (with a warning) when no PostgreSQL is reachable."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        import asyncpg

        _postgres(f'CREATE DATABASE "{name}"')
    except (ImportError, TimeoutError, OSError, asyncpg.PostgresError) as exc:
        warnings.warn(f"PostgreSQL not reachable at {admin_dsn()} ({exc}): the Prefect server runs on SQLite "
                      f"instead", stacklevel=2)
        return None
    return name


@dataclass
class LocalPrefectServer:
    home: Path
    database_prefix: str = "exec_reports"
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    database: str | None = None
    process: subprocess.Popen | None = None
    children: list[subprocess.Popen] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def backend(self) -> str:
        return f"PostgreSQL ({self.database})" if self.database else "SQLite"

    def client_env(self) -> dict[str, str]:
        """Environment for anything that talks to this server (CLI, workers, flows)."""
        env = {**os.environ, "PREFECT_HOME": str(self.home / "prefect-home"), "PREFECT_API_URL": self.api_url,
               "PREFECT_UI_URL": f"http://127.0.0.1:{self.port}"}
        apply_telemetry_setting(env)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 180) -> LocalPrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.database = create_postgres_database(self.database_prefix)
        url = (f"postgresql+asyncpg://{admin_dsn().split('://', 1)[1].rsplit('/', 1)[0]}/{self.database}"
               if self.database else f"sqlite+aiosqlite:///{self.home / 'prefect.db'}")
        env = {**self.client_env(), "PREFECT_API_DATABASE_CONNECTION_URL": url, "PREFECT_UI_ENABLED": "false"}
        log = (self.home / "server.log").open("w")
        self.process = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                                        env=env, cwd=self.home, start_new_session=True, stdout=log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).json() is True:
                    return self
            except (httpx.HTTPError, ValueError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.home / "server.log").read_text()[-3000:]
                self.stop()
                raise RuntimeError(f"prefect server did not start:\n{tail}")
            time.sleep(1)

    def wait_for_flow_run(self, flow_run_id: str, timeout: float) -> dict:
        """The flow run (as the API returns it) once its state is final; TimeoutError naming the last state
        after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            run = httpx.get(f"{self.api_url}/flow_runs/{flow_run_id}", timeout=30).raise_for_status().json()
            if run["state"] and run["state"]["type"] in FINAL_STATE_TYPES:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"flow run {flow_run_id} did not finish within {timeout:g} s; last state "
                                   f"{run['state']}")
            time.sleep(1)

    def spawn(self, args: list[str], cwd: Path, log_name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start a long-running helper process (a worker) that ``stop()`` will end."""
        process = subprocess.Popen(args, cwd=cwd, env=env or self.client_env(), start_new_session=True,
                                   stdout=(self.home / log_name).open("w"), stderr=subprocess.STDOUT)
        self.children.append(process)
        return process

    def stop(self) -> None:
        for process in [*self.children, self.process]:
            terminate(process)
        if self.database:
            try:
                _postgres(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            except Exception as exc:  # cleanup must not mask the real outcome
                warnings.warn(f"could not drop database {self.database}: {exc}", stacklevel=2)
            self.database = None

    def __enter__(self) -> LocalPrefectServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def terminate(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
