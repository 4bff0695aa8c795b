"""The delivery guarantee under real failures, end to end against moto's SES server over HTTP:

- the real flow (``exec-reports run`` in its own process, with its own local Prefect) SIGKILLed at
  random points of a 105-message run, then re-run: no message twice, and only messages whose
  provider call was in flight at a kill are missing; those are reported as unknown, listed by
  ``deliveries unknown`` and resent exactly by ``run --resend --only``;
- two runs of the same period started at the same instant in two processes, sharing the local (SQLite),
  a PostgreSQL or an S3 record store: every message once, none missing, no false failures.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from bench.synthetic import make_portfolio
from tests.conftest import SAMPLE_PERIOD

from .conftest import REGION, SENDER, aws_client, moto_sent_raw_messages, parse_mime

PROJECT = Path(__file__).resolve().parents[3]
SEND_RATE = 40.0  # what moto reports as MaxSendRate here (it always says 1/s otherwise)


@pytest.fixture
def fast_moto(moto_url, monkeypatch):
    """moto reports the same quota for every account (1 message/s, 200 a day) and has no API to change
    it; the server runs in this process, so its quota model is patched to a realistic production
    account. Everything else (identity checks, what was sent) is moto's own."""
    from moto.ses import models

    original = models.SESQuota.__init__

    def quota(self, sent):
        original(self, sent)
        self.max_send_rate, self.max24_hour_send = SEND_RATE, 1_000_000

    monkeypatch.setattr(models.SESQuota, "__init__", quota)
    aws_client("ses", moto_url).verify_email_identity(EmailAddress=SENDER)
    return moto_url


def sent_count() -> int:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_message_count


def delivered(url: str) -> Counter:
    """(report header, To) of every message SES accepted, with how many times."""
    counts: Counter = Counter()
    for stored in moto_sent_raw_messages(url):
        message = parse_mime(stored["raw_data"])
        counts[(message["X-Exec-Reports-Report"], message["To"].lower())] += 1
    return counts


def portfolio(tmp_path: Path, tenants: int, records: dict, gm_recipients: int = 1) -> Path:
    """A synthetic portfolio sending SES through moto: per tenant ``gm_recipients`` gm briefs and one
    owner brief, plus the five portfolio briefs."""
    path = make_portfolio(tenants, tmp_path / "portfolio")
    config = yaml.safe_load(path.read_text())
    for tenant in config["tenants"]:
        tenant["recipients"]["gm"] = [f"gm{n}@{tenant['id']}.example" for n in range(gm_recipients)]
    config["delivery"] = {"backend": "ses", "outbox_dir": "outbox", "from_address": SENDER,
                          "ses": {"region": REGION, "max_attempts": 2, "backoff_base_seconds": 0.1,
                                  "check_account_enabled": False},  # moto lacks GetAccountSendingEnabled
                          "records": records}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def child_env(tmp_path: Path, moto_url: str, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PREFECT_", "EXEC_REPORTS_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION,
               SES_ENDPOINT_URL=moto_url, AWS_ENDPOINT_URL_S3=moto_url, PYTHONPATH=str(PROJECT),
               PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_LOGGING_LEVEL="WARNING",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", **extra)
    return env


def run_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.operate.cli", *args], cwd=PROJECT, env=env, capture_output=True,
                          text=True, timeout=600)


def records_in(root: Path, state: str) -> list:
    from flows.delivery.records import LocalRecordStore

    return [record for record in LocalRecordStore(root).list("ses", SAMPLE_PERIOD) if record.state == state]


@pytest.fixture
def prefect_server(tmp_path):
    """A real Prefect server, as in production: a killed flow process leaves it (and its record of the
    run) behind, as a crashed worker would."""
    from flows.devtools.prefect_server import LocalPrefectServer

    with LocalPrefectServer(tmp_path / "prefect-server", database_prefix="exec_reports_crash") as server:
        yield server


def test_sigkill_at_random_points_then_rerun_sends_nothing_twice_and_leaves_only_in_flight_calls_unknown(
        fast_moto, prefect_server, tmp_path):
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    # Lease: the longest a live run's claim can stand without an outcome; short here so the test
    # need not wait five minutes for the killed runs' claims to count as unknown.
    # 20 tenants x (4 gm recipients + 1 owner) + 5 portfolio briefs: 105 messages, each its own provider call.
    config = portfolio(tmp_path, 20, {"lease_seconds": 3}, gm_recipients=4)
    records_root = config.parent / ".deliveries"
    env = child_env(tmp_path, fast_moto, PREFECT_API_URL=prefect_server.api_url)
    run = ["run", "--config", str(config), "--period", SAMPLE_PERIOD, "--json"]
    roles = {yaml.safe_load(p.read_text().split("---")[1])["role"] for p in (config.parent / "reports").glob("*.md")}
    expected_messages = 20 * 5 + 5

    in_flight_at_kills = 0
    # One kill in each third of the run: early, middle, late.
    kill_points = [rng.randrange(5, 35), rng.randrange(35, 70), rng.randrange(70, expected_messages - 5)]
    for kill_at in kill_points:
        process = subprocess.Popen([sys.executable, "-m", "flows.operate.cli", *run], cwd=PROJECT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 300
        while sent_count() < kill_at and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert process.poll() is None, f"seed {seed}: run ended before the kill at {kill_at}: {process.stderr.read()}"
        os.killpg(process.pid, signal.SIGKILL)  # the flow and its local Prefect server die together
        process.wait()
        process.stderr.close()
        claims = records_in(records_root, "sending")
        # At most one provider call per concurrent sender (one per role) can have been in flight.
        assert len(claims) - in_flight_at_kills <= len(roles), f"seed {seed}"
        in_flight_at_kills = len(claims)

    print(f"seed {seed}: kills after {kill_points} messages left {in_flight_at_kills} claim(s) in flight")
    time.sleep(3.1)  # the killed runs' leases run out
    rerun = run_cli(env, *run)
    summary = json.loads(rerun.stdout)

    counts = delivered(fast_moto)
    assert max(counts.values()) == 1, f"seed {seed}: duplicates {[k for k, n in counts.items() if n > 1]}"
    missing = expected_messages - len(counts)
    assert missing <= in_flight_at_kills, f"seed {seed}"
    # Exactly the claims whose run died mid-call are unknown: failed with that reason, and nothing else failed.
    unknown = [f for f in summary["failed"] if f["reason"].startswith("delivery state unknown")]
    assert len(unknown) == len(summary["failed"]) == in_flight_at_kills, f"seed {seed}: {summary['failed']}"
    assert rerun.returncode == 1
    assert len(summary["sent"]) + len(summary["skipped"]) + len(unknown) == expected_messages

    listing = run_cli(env, "deliveries", "unknown", "--config", str(config), "--period", SAMPLE_PERIOD,
                      "--delivery", "ses", "--json")
    listed = json.loads(listing.stdout)
    assert (listing.returncode == 1) == bool(in_flight_at_kills)
    assert len(listed["unknown"]) == in_flight_at_kills
    # The operator checks SES's log and resends exactly the unknown ones that never arrived.
    arrived = {(header, to) for header, to in counts}
    to_resend = [row["selector"] for row in listed["unknown"]
                 if (f"{row['report']}; tenant={row['tenant']}; period={SAMPLE_PERIOD}", row["recipient"])
                 not in arrived]
    assert len(to_resend) == missing
    if to_resend:
        resent = run_cli(env, *run, "--resend", *[arg for s in to_resend for arg in ("--only", s)])
        assert resent.returncode == 0, resent.stderr
        assert len(json.loads(resent.stdout)["sent"]) == missing

    final = delivered(fast_moto)
    assert len(final) == expected_messages and max(final.values()) == 1, f"seed {seed}"


CONCURRENT_RUN = """
import json, os, sys, time
from pathlib import Path
from flows.core.config import load_config
from flows.delivery import get_backend
from flows.delivery.records import open_record_store
from flows.core.period import parse_period
from flows.orchestrator.run import run_plain

config = load_config(sys.argv[1])
backend = get_backend(config, "run")
backend.preflight()
store = open_record_store(config)
barrier = Path(sys.argv[2])
(barrier / f"ready-{os.getpid()}").touch()
while not (barrier / "go").exists():  # both processes start delivering at the same instant
    time.sleep(0.005)
summary, _ = run_plain(config, parse_period(sys.argv[3]), backend=backend, records=store)
print(json.dumps(summary, default=str))
"""


def concurrent_runs(config: Path, env: dict, copies: int = 2) -> list[dict]:
    barrier = config.parent / "barrier"
    barrier.mkdir()
    processes = [subprocess.Popen([sys.executable, "-c", CONCURRENT_RUN, str(config), str(barrier), SAMPLE_PERIOD],
                                  cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(copies)]
    deadline = time.monotonic() + 120
    while len(list(barrier.glob("ready-*"))) < copies and time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
        time.sleep(0.01)
    (barrier / "go").touch()  # after both loaded config, definitions and passed the SES preflight
    summaries = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        summaries.append(json.loads(out))
    return summaries


@pytest.mark.parametrize("store", ["local", "postgres", "s3"])
def test_two_runs_of_the_same_period_at_once_send_every_message_once_without_false_failures(
        store, fast_moto, tmp_path, request):
    if store == "local":  # two processes on one machine share the SQLite records beside the outbox
        config = portfolio(tmp_path, 20, {})
        env = child_env(tmp_path, fast_moto)
    elif store == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        config = portfolio(tmp_path, 20, {"store": "postgres"})
        env = child_env(tmp_path, fast_moto, EXEC_REPORTS_RECORDS_DSN=dsn)
    else:
        aws_client("s3", fast_moto).create_bucket(Bucket="exec-reports-state")
        config = portfolio(tmp_path, 20, {"store": "s3", "bucket": "exec-reports-state"})
        env = child_env(tmp_path, fast_moto)
    expected_messages = 20 * 2 + 5

    first, second = concurrent_runs(config, env)

    counts = delivered(fast_moto)
    assert len(counts) == expected_messages and max(counts.values()) == 1
    assert first["failed"] == [] and second["failed"] == []
    assert len(first["sent"]) + len(second["sent"]) == expected_messages
    # What one run sent the other skipped, naming the run that had it (being sent, or already sent).
    for summary in (first, second):
        assert len(summary["sent"]) + len(summary["skipped"]) == expected_messages
        assert all("being sent by run" in s["reason"] or "already sent" in s["reason"] for s in summary["skipped"])
    both_worked = min(len(first["sent"]), len(second["sent"]))
    assert both_worked > 0, "the runs did not overlap: the test proved nothing"
