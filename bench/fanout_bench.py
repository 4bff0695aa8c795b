"""Fan-out (issue 27): messages per second of a sharded run with 1, 2 and 3 shard workers on this machine, the
parent's fixed cost per shard, and a model of the workers a weekly run of 10,000 and 100,000 entities needs,
with SES's send rate as the ceiling.

A real Prefect server (PostgreSQL), the process work pool and `prefect deploy --all` from a copy of the project
whose prefect.yaml puts the `shard` deployment on work queue ``shards`` and the others on ``parent``. For each
worker count N: one parent worker and N shard workers (``--limit 1``: a worker runs one shard process at a
time), one `send-exec-reports/weekly` run with ``shards`` over a fresh synthetic portfolio (its own outbox and
delivery records, so nothing is skipped), then the workers are stopped. The same portfolio with ``shards=1`` on
the parent's worker alone is the single-process baseline. Every figure comes from the Prefect API (flow runs and
their state history) and the outbox; nothing here asserts.

    .venv/bin/python -m bench.fanout_bench --tenants 20 --shards 2 --workers 1,2
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from bench.synthetic import PROJECT_ROOT, make_portfolio

PERIOD = "2026-W47"
POOL = "exec-reports"
PARENT_QUEUE, SHARD_QUEUE = "parent", "shards"
PARENT_DEPLOYMENT, SHARD_DEPLOYMENT = "send-exec-reports/weekly", "send-exec-reports-shard/shard"
# The 5 portfolio briefs (ceo, cfo, cmo, cto, accounting) the parent renders; every tenant gets one GM brief.
PORTFOLIO_MESSAGES = 5
MODEL_ENTITIES = (10_000, 100_000)
MODEL_WINDOWS_HOURS = (1.0, 8.0)
# SES MaxSendRate: 14/s is a new account's default production rate; 100/s and 500/s are raised rates.
SES_RATES = (14.0, 100.0, 500.0)
# Environment the bench keeps from the caller: everything else named EXEC_REPORTS_* (records store, config,
# delivery backend, ...) would point the runs elsewhere than the fresh synthetic portfolio.
KEPT_PROJECT_ENV = {"EXEC_REPORTS_TELEMETRY", "EXEC_REPORTS_TEST_POSTGRES"}


# ---- the model ----------------------------------------------------------------------------------------------


def fanout_model(rate_per_worker: float, entities: int, ses_rate: float, window_hours: float) -> dict:
    """A weekly run of ``entities`` (1 GM brief each + PORTFOLIO_MESSAGES portfolio briefs) by workers that each
    deliver ``rate_per_worker`` messages/s, through an account that sends at most ``ses_rate``/s.

    Assumes workers scale linearly (each has its own core: not so on this machine past its core count) and
    leaves out the parent's fixed cost (seconds, against hours here). ``workers_for_window`` is None when SES
    alone cannot send them within the window; ``hours`` is then the time with ``workers_to_saturate_ses``
    workers, beyond which more workers gain nothing."""
    messages = entities + PORTFOLIO_MESSAGES
    window_s = window_hours * 3600
    ses_s = messages / ses_rate
    saturate = math.ceil(ses_rate / rate_per_worker)
    needed = math.ceil(messages / (rate_per_worker * window_s)) if ses_s <= window_s else None
    workers = needed or saturate
    seconds = max(messages / (workers * rate_per_worker), ses_s)
    return {"entities": entities, "messages": messages, "rate_per_worker": rate_per_worker, "ses_rate": ses_rate,
            "window_hours": window_hours, "one_worker_hours": messages / rate_per_worker / 3600,
            "ses_hours": ses_s / 3600, "workers_for_window": needed, "workers_to_saturate_ses": saturate,
            "hours": seconds / 3600, "bound": "ses" if seconds <= ses_s else "workers"}


def model(runs: list[dict]) -> dict:
    """fanout_model for each entity count, window and SES rate, at the per-worker rate of the N=1 run and at
    that of the best N (its messages/s divided by N)."""
    n1 = next((run for run in runs if run["shard_workers"] == 1 and run["messages_per_s"]), None)
    best = max((run for run in runs if run["messages_per_s"]), key=lambda run: run["messages_per_s"], default=None)
    rates = {}
    if n1:
        rates["N=1"] = n1["messages_per_s"]
    if best:
        rates[f"best N={best['shard_workers']}"] = best["messages_per_s"] / best["shard_workers"]
    return {
        "assumption": f"1 GM brief per entity + {PORTFOLIO_MESSAGES} portfolio briefs a week; workers scale linearly "
                      "(one core each); the parent's fixed cost is left out; SES MaxSendRate is the ceiling",
        "rates_per_worker": rates,
        "rows": [{"rate_from": name, **fanout_model(rate, entities, ses_rate, window)}
                 for name, rate in rates.items() for entities in MODEL_ENTITIES for window in MODEL_WINDOWS_HOURS
                 for ses_rate in SES_RATES],
    }


# ---- the stack ----------------------------------------------------------------------------------------------


def copy_project(project: Path) -> Path:
    """The project as the e2e fixture copies it, with a prefect.yaml whose shard deployment is on the work queue
    ``shards`` and the others on ``parent`` (so shard workers can be counted), and no schedules."""
    project.mkdir(parents=True, exist_ok=True)
    for name in ("flows", "sources", "reports", "examples"):
        shutil.copytree(PROJECT_ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    spec = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    for deployment in spec["deployments"]:
        # A copy each: the weekly and monthly deployments share one YAML anchor.
        deployment["work_pool"] = {**copy.deepcopy(deployment["work_pool"]), "work_queue_name":
                                   SHARD_QUEUE if deployment["name"] == "shard" else PARENT_QUEUE}
        deployment.pop("schedules", None)  # the bench starts its runs itself
    (project / "prefect.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return project


class Stack:
    def __init__(self, workdir: Path, query_seconds: float, chart_cache: bool) -> None:
        from flows.devtools.prefect_server import LocalPrefectServer

        self.workdir = workdir
        self.project = copy_project(workdir / "project")
        self.server = LocalPrefectServer(workdir / "server", database_prefix="exec_reports_fanout", extra_env={
            "PREFECT_WORKER_QUERY_SECONDS": f"{query_seconds:g}", "PREFECT_WORKER_PREFETCH_SECONDS": "5"})
        self.chart_cache = chart_cache

    @property
    def env(self) -> dict[str, str]:
        env = {name: value for name, value in self.server.client_env().items()
               if not name.startswith("EXEC_REPORTS_") or name in KEPT_PROJECT_ENV}
        # Off: every run draws every chart, as a new week's data does (and no run is warmed by the one before).
        env["EXEC_REPORTS_CACHE_DIR"] = str(self.workdir / "cache") if self.chart_cache else "off"
        return env

    def cli(self, *args: str, timeout: float = 300) -> str:
        from flows.devtools.prefect_server import PREFECT

        result = subprocess.run([PREFECT, *args], cwd=self.project, env=self.env, capture_output=True, text=True,
                                timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def api(self, method: str, path: str, **kwargs) -> object:
        response = httpx.request(method, f"{self.server.api_url}{path}", timeout=60, **kwargs)
        response.raise_for_status()
        return response.json()

    def start(self) -> None:
        self.server.start()
        self.cli("work-pool", "create", POOL, "--type", "process")
        self.cli("--no-prompt", "deploy", "--all")

    def start_workers(self, label: str, shard_workers: int) -> list[subprocess.Popen]:
        from flows.devtools.prefect_server import PREFECT

        base = [PREFECT, "worker", "start", "--pool", POOL, "--type", "process"]
        names = [f"{label}-parent"] + [f"{label}-shard-{i}" for i in range(1, shard_workers + 1)]
        workers = [self.server.spawn([*base, "--work-queue", PARENT_QUEUE, "--name", names[0]], cwd=self.project,
                                     log_name=f"{names[0]}.log", env=self.env)]
        workers += [self.server.spawn([*base, "--work-queue", SHARD_QUEUE, "--limit", "1", "--name", name],
                                      cwd=self.project, log_name=f"{name}.log", env=self.env) for name in names[1:]]
        deadline = time.monotonic() + 180
        while True:  # every worker polling before the run starts: its start-up is not in the figures
            online = {worker["name"] for worker in self.api("POST", f"/work_pools/{POOL}/workers/filter", json={})
                      if worker["status"] == "ONLINE"}
            if set(names) <= online:
                return workers
            dead = [w.args for w in workers if w.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"workers not online ({sorted(set(names) - online)}; exited: {dead}); see "
                                   f"{self.server.home}")
            time.sleep(1)

    def stop_workers(self, workers: list[subprocess.Popen]) -> None:
        """Each worker's process group, then any flow-run process of theirs still alive (in its own session)."""
        from flows.devtools.prefect_server import terminate

        left = [pid for worker in workers for pid in descendants(worker.pid)]
        for worker in workers:
            terminate(worker)
            if worker in self.server.children:
                self.server.children.remove(worker)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def run_flow(self, config: Path, shards: int, timeout: float) -> dict:
        deployment = self.api("GET", f"/deployments/name/{PARENT_DEPLOYMENT}")
        run = self.api("POST", f"/deployments/{deployment['id']}/create_flow_run", json={
            "parameters": {"period": PERIOD, "shards": shards, "config": str(config)}})
        return self.server.wait_for_flow_run(run["id"], timeout)

    def shard_runs(self, parent_id: str, config: Path) -> list[dict]:
        runs = self.api("POST", "/flow_runs/filter", json={"flow_runs": {"parent_flow_run_id": {"any_": [parent_id]}},
                                                           "limit": 200})
        return [run for run in runs if run["parameters"].get("config") == str(config)]

    def states(self, flow_run_id: str) -> dict[str, dt.datetime]:
        """The first time the flow run entered each state type."""
        first: dict[str, dt.datetime] = {}
        for state in sorted(self.api("GET", "/flow_run_states/", params={"flow_run_id": flow_run_id}),
                            key=lambda state: state["timestamp"]):
            first.setdefault(state["type"], when(state["timestamp"]))
        return first


def descendants(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        try:
            children = [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except OSError:
            continue
        found += children
        pending += children
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its reaped children (cutime, cstime) and its live descendants."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for index, current in enumerate([pid, *descendants(pid)]):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15 if index == 0 else 13]) / tick
    return total


def when(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def spread(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    return {"median": statistics.median(values), "max": max(values)} if values else {"median": None, "max": None}


# ---- one measured run ---------------------------------------------------------------------------------------


def measure(stack: Stack, label: str, tenants: int, shards: int, shard_workers: int, timeout: float) -> dict:
    config = make_portfolio(tenants, stack.workdir / f"portfolio-{label}", with_tenant_report=False)
    outbox = config.parent / "outbox"
    assert not outbox.exists() and not (config.parent / ".deliveries").exists(), "a run must start with no records"
    workers = stack.start_workers(label, shard_workers)
    try:
        load = os.getloadavg()[0]
        cpu_before = sum(cpu_seconds(w.pid) for w in workers)
        server_before = cpu_seconds(stack.server.process.pid)
        parent = stack.run_flow(config, shards, timeout)
        # The flow-run processes are reaped (their CPU is in the worker's cutime) once the worker sees them end.
        time.sleep(2)
        workers_cpu = sum(cpu_seconds(w.pid) for w in workers) - cpu_before
        server_cpu = cpu_seconds(stack.server.process.pid) - server_before
    finally:
        stack.stop_workers(workers)
    expected = tenants + PORTFOLIO_MESSAGES
    messages = sum(1 for _ in outbox.rglob("*.eml")) if outbox.exists() else 0
    start, end = when(parent["start_time"]), when(parent["end_time"])
    wall = seconds(start, end)
    result = {
        "label": label, "shards": shards, "shard_workers": shard_workers, "tenants": tenants,
        "state": parent["state"]["type"], "state_message": (parent["state"].get("message") or "")[:300],
        "messages": messages, "expected_messages": expected,
        "messages_check": "ok" if messages == expected else f"MISMATCH: {messages} .eml files, expected {expected}",
        "wall_s": wall, "messages_per_s": messages / wall if wall else None,
        "parent_pickup_s": seconds(when(parent["created"]), start),
        "cpu_s": workers_cpu, "server_cpu_s": server_cpu,
        # Over created -> end: the CPU includes starting the parent's process, before its start_time.
        "busy_cores": (workers_cpu + server_cpu) / span if (span := seconds(when(parent["created"]), end)) else None,
        "load_before": load,
    }
    if shards > 1:
        result.update(shard_figures(stack, parent, config, shard_workers, shards, start, end, wall))
    return result


def shard_figures(stack: Stack, parent: dict, config: Path, workers: int, shards: int, start: dt.datetime,
                  end: dt.datetime, wall: float) -> dict:
    runs = stack.shard_runs(parent["id"], config)
    rows = []
    for run in runs:
        states = stack.states(run["id"])
        rows.append({"shard": run["parameters"].get("shard"), "state": run["state"]["type"],
                     "created": when(run["created"]), "pending": states.get("PENDING"),
                     "start": when(run["start_time"]), "end": when(run["end_time"])})
    done = [row for row in rows if row["start"] and row["end"]]
    # When a worker was free to take each shard, as if the N workers took shards in the order they did: the
    # shard's queue time (created -> running) less any wait for a busy worker is the worker's pickup (its
    # poll) and the start of the flow-run process (pending -> running).
    free = [dt.datetime.min.replace(tzinfo=dt.UTC)] * max(workers, 1)
    pickup = []
    for row in sorted(done, key=lambda row: row["pending"] or row["start"]):
        slot = min(range(len(free)), key=free.__getitem__)
        ready = max(row["created"], free[slot])
        pickup.append(seconds(ready, row["pending"] or row["start"]))
        free[slot] = row["end"]
    first_created = min((row["created"] for row in rows), default=None)
    last_end = max((row["end"] for row in done), default=None)
    phase = seconds(first_created, last_end)
    fixed = wall - phase if phase is not None else None
    return {
        "shard_runs": len(rows), "shard_states": sorted(row["state"] for row in rows),
        "shard_queue_s": spread([seconds(row["created"], row["start"]) for row in done]),
        "shard_pickup_s": spread(pickup),
        "shard_process_start_s": spread([seconds(row["pending"], row["start"]) for row in done]),
        "shard_duration_s": spread([seconds(row["start"], row["end"]) for row in done]),
        "shard_phase_s": phase,
        "parent_before_shards_s": seconds(start, first_created), "parent_after_shards_s": seconds(last_end, end),
        "parent_fixed_s": fixed, "parent_fixed_per_shard_s": fixed / shards if fixed is not None else None,
    }


SHARED_LIMIT_SCRIPT = """
import json, sys, threading, time
from flows.send_rate import PrefectSendRate
rate, grants, senders = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
shared = PrefectSendRate("exec-reports-bench-send-rate-%g" % rate)
shared.use_rate(rate)
times = []
def send():
    for _ in range(grants // senders):
        shared.acquire()
        times.append(time.time())
threads = [threading.Thread(target=send) for _ in range(senders)]
for thread in threads: thread.start()
for thread in threads: thread.join()
shared.close()
print(json.dumps({"times": times, "slots": shared.slots}))
"""
SHARED_LIMIT_RATES = (14.0, 50.0, 1000.0)


def bench_shared_limit(stack: Stack, rates=SHARED_LIMIT_RATES, processes: int = 3, senders: int = 2) -> list[dict]:
    """The shared send-rate limit as shards use it: ``processes`` processes (shards on workers) of ``senders``
    threads each take grants from one limit at each rate, about 6 s worth (600 at most). Reported: grants a
    second after the first burst (one per slot), the share of the rate that is (the limit's design gives 93%),
    and the most grants in any one second (never above the rate). At 1000/s the Prefect API is the limit:
    that row is the most a sharded run can send through this server, whatever the account's rate."""
    results = []
    for rate in rates:
        grants = min(600, int(rate * 6)) // (processes * senders) * processes * senders
        children = [subprocess.Popen([sys.executable, "-c", SHARED_LIMIT_SCRIPT, str(rate), str(grants // processes),
                                      str(senders)], cwd=stack.project, env={**stack.env, "PYTHONPATH": str(stack.project)},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(processes)]
        outputs = [child.communicate(timeout=600) for child in children]
        if any(child.returncode for child in children):
            errors = [err.strip().splitlines()[-1] for (_, err), child in zip(outputs, children, strict=True)
                      if child.returncode and err.strip()]
            results.append({"rate": rate, "error": errors[0] if errors else "failed"})
            continue
        answers = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
        times = sorted(t for answer in answers for t in answer["times"])
        slots = answers[0]["slots"]
        # Past the first burst (one grant per slot) the limit's pace shows; a limit with more slots than grants
        # never gets past it, and its figure is the API's own pace over all the grants.
        steady = (len(times) - slots) / (times[-1] - times[slots - 1]) if len(times) > slots else \
            len(times) / (times[-1] - times[0])
        busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
        results.append({"rate": rate, "grants": len(times), "processes": processes, "senders": senders,
                        "slots": slots, "grants_per_s": steady,
                        "share_of_rate": steady / math.floor(rate) if steady else None, "busiest_second": busiest})
    return results


def bench_fanout(workdir: Path, tenants: int = 300, shards: int = 6, worker_counts=(1, 2, 3), *,
                 query_seconds: float = 1.0, chart_cache: bool = False, timeout: float = 3600,
                 warmup: bool = True) -> dict:
    """See the module's docstring. Everything it starts is stopped before it returns, also on failure."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(workdir, query_seconds, chart_cache)
    started = time.monotonic()
    try:
        stack.start()
        if warmup:  # untimed: the first run of anything on this machine pays for cold files and imports
            measure(stack, "warmup", 4, 2, 1, timeout)
        baseline = measure(stack, "baseline", tenants, 1, 0, timeout)
        runs = [measure(stack, f"n{count}", tenants, shards, count, timeout) for count in worker_counts]
        shared_limit = bench_shared_limit(stack)
        backend = stack.server.backend
    finally:
        stack.server.stop()
    return {
        "tenants": tenants, "shards": shards, "worker_counts": list(worker_counts), "cpus": os.cpu_count(),
        "backend": backend, "worker_query_seconds": query_seconds,
        "chart_cache": "warm across runs" if chart_cache else "off (every chart drawn, as in a new week)",
        "baseline": baseline, "runs": runs, "model": model(runs), "shared_limit": shared_limit,
        "bench_s": time.monotonic() - started,
    }


# ---- bench/results.md ---------------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_row(result: dict) -> str:
    """A row for bench/results.md's table (| # | measure | result | target | |)."""
    base = result["baseline"]
    best = max(result["runs"], key=lambda run: run["messages_per_s"] or 0)
    return (f"| 8 | fan-out: {result['tenants']} tenants in {result['shards']} shards, "
            f"{'/'.join(str(n) for n in result['worker_counts'])} shard workers on {result['cpus']} cores | best "
            f"{_f(best['messages_per_s'])} msgs/s with {best['shard_workers']} (single process, shards=1: "
            f"{_f(base['messages_per_s'])} msgs/s) | (reported) | |")


def result_lines(result: dict) -> list[str]:
    """The fan-out section of bench/results.md: per worker count, then the model."""
    cpus, base = result["cpus"], result["baseline"]
    lines = [
        "", "## Fan-out (issue 27)", "",
        f"{result['tenants']} synthetic tenants ({result['tenants'] + PORTFOLIO_MESSAGES} messages to the outbox) in "
        f"{result['shards']} shards of `send-exec-reports-shard/shard`; one parent worker and N shard workers "
        f"(`--limit 1`: one shard process at a time each), Prefect server on {result['backend']}, workers polling "
        f"every {result['worker_query_seconds']:g} s, chart cache {result['chart_cache']}. This machine has {cpus} "
        f"cores (`os.cpu_count()`), shared by the shard processes, the parent, the Prefect server and PostgreSQL: "
        f"with more than {cpus} busy shard processes they share {cpus} cores, so a row beyond {cpus} workers "
        "measures sharing, not capacity. Busy cores: CPU seconds of the workers' processes (flow runs and chart "
        "processes included) and the Prefect server from the parent's creation to its end, over that time. Parent fixed cost: the parent's wall time less its shard phase (first shard created to "
        "last shard ended), i.e. planning before the shards plus reading their results and rendering the portfolio "
        "briefs after; per shard is that total divided by the shards (it does not grow one shard at a time). Queue: "
        "shard created to running, waiting for a busy worker included; pickup: from when a worker was free.", "",
        "| shard workers | messages | wall s | msgs/s | busy cores | shard queue s (median / max) | pickup s median "
        "| process start s median | shard run s (median / max) | parent fixed s (before + after) | per shard s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| single process (shards=1) | {base['messages']} | {_f(base['wall_s'])} | {_f(base['messages_per_s'])} | "
        f"{_f(base['busy_cores'], 2)} | - | - | - | - | - | - |",
    ]
    for run in result["runs"]:
        queue, duration = run.get("shard_queue_s") or {}, run.get("shard_duration_s") or {}
        lines.append(
            f"| {run['shard_workers']} | {run['messages']}"
            + ("" if run["messages_check"] == "ok" else f" ({run['messages_check']})")
            + f" | {_f(run['wall_s'])} | {_f(run['messages_per_s'])} | {_f(run['busy_cores'], 2)} | "
            f"{_f(queue.get('median'))} / {_f(queue.get('max'))} | {_f((run.get('shard_pickup_s') or {}).get('median'))} "
            f"| {_f((run.get('shard_process_start_s') or {}).get('median'))} | {_f(duration.get('median'))} / "
            f"{_f(duration.get('max'))} | {_f(run.get('parent_fixed_s'))} ({_f(run.get('parent_before_shards_s'))} + "
            f"{_f(run.get('parent_after_shards_s'))}) | {_f(run.get('parent_fixed_per_shard_s'), 2)} |")
    limits = result.get("shared_limit") or []
    if limits:
        lines += ["", "Shared send-rate limit (`exec-reports-ses-send-rate`: a Prefect global concurrency limit of "
                  "floor(rate) slots, each grant held 1.075 s; two API calls per send), taken by "
                  f"{limits[0].get('processes', '?')} processes of {limits[0].get('senders', '?')} threads each:", "",
                  "| limit set to /s | grants | grants/s after the first burst | share of the rate | most in one second |",
                  "|---:|---:|---:|---:|---:|"]
        for limit in limits:
            if "error" in limit:
                lines.append(f"| {limit['rate']:g} | not measured: {limit['error']} | | | |")
            else:
                lines.append(f"| {limit['rate']:g} | {limit['grants']} | {_f(limit['grants_per_s'])} | "
                             f"{_f((limit['share_of_rate'] or 0) * 100, 0)}% | {limit['busiest_second']} |")
    failed = [run for run in [base, *result["runs"]] if run["state"] != "COMPLETED"]
    if failed:
        lines += ["", "Runs that did not complete: " + "; ".join(
            f"{run['label']}: {run['state']} {run['state_message']}" for run in failed)]
    modelled = result["model"]
    lines += ["", f"Model ({modelled['assumption']}). Per-worker rate: "
              + ", ".join(f"{name} {rate:.2f} msgs/s" for name, rate in modelled["rates_per_worker"].items())
              + ". Workers needed: to send them within the window at that rate; hours: max(messages / (workers × "
              "rate per worker), messages / SES rate) with those workers. Where SES's rate alone cannot send them "
              "within the window, the cell says so, with the hours at the workers that saturate SES "
              "(SES rate / rate per worker).", "",
              "| rate from | entities | messages | one worker h | window h | workers needed | "
              + " | ".join(f"h at SES {rate:g}/s" for rate in SES_RATES) + " |",
              "|---|---:|---:|---:|---:|---:|" + "---:|" * len(SES_RATES)]
    groups: dict[tuple, dict[float, dict]] = {}
    for row in modelled["rows"]:
        groups.setdefault((row["rate_from"], row["entities"], row["window_hours"]), {})[row["ses_rate"]] = row
    seen_rates = set()
    for (rate_from, entities, window), by_ses in groups.items():
        first = next(iter(by_ses.values()))
        if (first["rate_per_worker"], entities, window) in seen_rates:
            continue  # the best N was N=1: the same rows again
        seen_rates.add((first["rate_per_worker"], entities, window))
        needed = math.ceil(first["messages"] / (first["rate_per_worker"] * window * 3600))
        cells = [f"{row['hours']:.2f}" if row["workers_for_window"] else
                 f"SES alone {row['ses_hours']:.2f} h ({row['hours']:.2f} h with {row['workers_to_saturate_ses']})"
                 for row in by_ses.values()]
        lines.append(f"| {rate_from} | {entities:,} | {first['messages']:,} | {first['one_worker_hours']:.1f} | "
                     f"{window:g} | {needed} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=300)
    parser.add_argument("--shards", type=int, default=6)
    parser.add_argument("--workers", default="1,2,3", help="comma-separated shard worker counts")
    parser.add_argument("--query-seconds", type=float, default=1.0, help="the workers' poll interval")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--shared-limit-only", action="store_true", help="only the shared send-rate limit")
    args = parser.parse_args(argv)
    from flows.core.telemetry import apply_telemetry_setting

    apply_telemetry_setting()
    with tempfile.TemporaryDirectory(prefix="exec-reports-fanout-") as tmp:
        if args.shared_limit_only:
            stack = Stack(Path(tmp), args.query_seconds, chart_cache=False)
            try:
                stack.start()
                print(json.dumps(bench_shared_limit(stack), indent=1))
            finally:
                stack.server.stop()
            return 0
        result = bench_fanout(Path(tmp), args.tenants, args.shards,
                              tuple(int(n) for n in args.workers.split(",") if n.strip()),
                              query_seconds=args.query_seconds, warmup=not args.no_warmup)
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
