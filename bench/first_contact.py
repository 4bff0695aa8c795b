"""First contact, measured: `exec-reports run` (what `make run` runs) on the sample portfolio as whole
commands, wall clock, against the plain pipeline on the same data in its own process.

- cold: a fresh PREFECT_HOME and no server: the run starts the local Prefect server (first start
  migrates its database) and then runs. Every cold run must succeed; failures are counted.
- warm: the server is already running (the daily loop); the compiled templates and charts come from
  the cache the earlier runs filled; warm uncached: the same with the cache off (flows/core/cache.py).
- plain: ``python -m bench.child plain`` on the same config and period, interpreter start included.
- history: ``exec-reports history`` with the local server up (after each warm run), whole command.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.synthetic import PROJECT_ROOT

EXEC_REPORTS = str(Path(sys.executable).parent / "exec-reports")


def _sample_copy(workdir: Path) -> Path:
    target = workdir / "first-contact"
    if not target.exists():
        shutil.copytree(PROJECT_ROOT / "examples", target / "examples", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(PROJECT_ROOT / "reports", target / "reports")
    return target / "examples" / "portfolio.yaml"


def _timed(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> tuple[float, int]:
    started = time.perf_counter()
    with log.open("w") as output:
        code = subprocess.run(command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT).returncode
    return time.perf_counter() - started, code


def measure(workdir: Path, period: str, cold_runs: int = 2, warm_runs: int = 3) -> dict:
    from flows.operate.local_server import stop_server

    config = _sample_copy(workdir)
    base_env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_API_URL")}
    run = [EXEC_REPORTS, "run", "--config", str(config), "--period", period, "--resend"]
    cold, warm, warm_uncached, plain, history, failures = [], [], [], [], [], []
    for attempt in range(cold_runs):
        home = workdir / f"first-contact-home-{attempt}"
        env = {**base_env, "PREFECT_HOME": str(home)}  # the CLI turns Prefect's telemetry off itself
        try:
            seconds, code = _timed(run, env, config.parent.parent, workdir / f"cold-{attempt}.log")
            cold.append(seconds)
            if code != 0:
                failures.append(f"cold run {attempt}: exit {code} (log {workdir / f'cold-{attempt}.log'})")
            if attempt == cold_runs - 1:  # the last server stays up for the warm runs
                for index in range(warm_runs):
                    seconds, code = _timed(run, env, config.parent.parent, workdir / f"warm-{index}.log")
                    warm.append(seconds)
                    if code != 0:
                        failures.append(f"warm run {index}: exit {code}")
                    seconds, code = _timed([sys.executable, "-m", "bench.child", "plain", str(config), period], env,
                                           PROJECT_ROOT, workdir / f"plain-{index}.log")
                    plain.append(seconds)
                    # The same warm run without the compiled-template and chart cache (flows/core/cache.py):
                    # what a run of a new period pays for charts whose figures changed.
                    seconds, code = _timed(run, {**env, "EXEC_REPORTS_CACHE_DIR": "off"}, config.parent.parent,
                                           workdir / f"warm-uncached-{index}.log")
                    warm_uncached.append(seconds)
                    if code != 0:
                        failures.append(f"warm run without cache {index}: exit {code}")
                    # `history` with the server up: it must read the server `run` keeps, not start one.
                    seconds, code = _timed([EXEC_REPORTS, "history", "--config", str(config)], env,
                                           config.parent.parent, workdir / f"history-{index}.log")
                    history.append(seconds)
                    if code != 0:
                        failures.append(f"history {index}: exit {code} (log {workdir / f'history-{index}.log'})")
        finally:
            stop_server(home)
    return {"cold_s": statistics.median(cold), "cold_max_s": max(cold), "cold_runs": len(cold),
            "warm_s": statistics.median(warm),
            "warm_uncached_s": statistics.median(warm_uncached), "plain_s": statistics.median(plain), "failures": failures,
            "history_s": statistics.median(history), "history_max_s": max(history), "warm_runs": len(history)}
