"""`exec-reports deliveries unknown` and a claim whose run is no longer running (case 4 of the second
hardening pass: for the lease's 300 s after a SIGKILL it said "no message ... unknown" and listed the
message as "being sent right now", while the re-run failed it as "delivery state unknown" and told the
operator to run that very command)."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import uuid

import pytest

from flows.delivery.message import Email
from flows.delivery.records import DeliveryKey, Record, open_record_store
from flows.operate.cli import main
from flows.operate.local_server import local_run_markers

from .conftest import load, write_config

PERIOD = "2026-W47"


def claimed(config, run_id: str, recipient: str = "cfo@holdings.example") -> str:
    """A claim taken right before a provider call, with the whole 300 s lease still ahead of it."""
    message = Email("CFO weekly", "<p>x</p>", "x", "reports@holdings.example", (recipient,), "cfo",
                    "portfolio", PERIOD)
    lease = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=300)).isoformat()
    record = Record(DeliveryKey.for_email(message), "sending", "outbox", run_id, dt.datetime.now(dt.UTC).isoformat(),
                    run_name=f"{PERIOD} killed run", lease_until=lease)
    open_record_store(load(config)).write(record, None)
    return record.key.label


@pytest.fixture
def config(portfolio_copy, monkeypatch, tmp_path):
    for variable in ("EXEC_REPORTS_RECORDS", "EXEC_REPORTS_RECORDS_PATH", "PREFECT_API_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    return write_config(portfolio_copy, {"backend": "outbox"})


def unknown(config, capsys) -> tuple[int, str]:
    code = main(["deliveries", "unknown", "--config", str(config), "--period", PERIOD])
    return code, capsys.readouterr().out


def test_a_claim_of_a_run_whose_process_was_killed_is_unknown_at_once_not_being_sent(config, tmp_path, capsys):
    run_id = str(uuid.uuid4())
    label = claimed(config, run_id)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    markers = local_run_markers()  # where `exec-reports run` leaves its marker for this PREFECT_HOME
    markers.mark(run_id, pid=process.pid)
    try:
        code, out = unknown(config, capsys)
        assert code == 0 and "no message of this period has an unknown delivery state" in out
        assert "being sent right now" in out and label in out  # its process still runs: a live claim
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    code, out = unknown(config, capsys)
    assert code == 1
    assert "1 message(s) with an unknown delivery state" in out and f"--resend --only {label}" in out
    assert "being sent right now" not in out


@pytest.mark.usefixtures("prefect_harness")
def test_a_claim_of_a_run_the_orchestrator_says_crashed_or_failed_is_unknown_at_once(config, capsys, monkeypatch):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL
    from prefect.states import Crashed, Failed, Running

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())

    @flow(name="exec-reports-liveness-probe")
    def probe() -> None:
        pass

    with get_client(sync_client=True) as client:
        runs = {name: client.create_flow_run(probe, state=Running()) for name in ("crashed", "failed", "running")}
        client.set_flow_run_state(runs["crashed"].id, Crashed(message="killed"), force=True)
        client.set_flow_run_state(runs["failed"].id, Failed(message="failed"), force=True)

    labels = {name: claimed(config, str(run.id), f"{name}@holdings.example") for name, run in runs.items()}
    code, out = unknown(config, capsys)
    assert code == 1 and "2 message(s) with an unknown delivery state" in out
    assert f"--only {labels['crashed']} --only {labels['failed']}" in out
    live = out.split("being sent right now", 1)[1]
    assert labels["running"] in live and labels["crashed"] not in live and labels["failed"] not in live
