"""Delivery records: the outbox and S3 (moto over HTTP) stores, re-runs, races and the crash window."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from flows.delivery.message import Email
from flows.delivery.outbox import OutboxBackend
from flows.delivery.records import (
    DeliveryKey,
    LocalRecordStore,
    PostgresRecordStore,
    Record,
    S3RecordStore,
    deliver_once,
    open_record_store,
)
from flows.orchestrator.run import run_plain

from .conftest import aws_client, load, write_config

BUCKET = "exec-reports-state"


def email(recipient: str = "cfo@holdings.example", period: str = "2026-W47") -> Email:
    return Email("CFO weekly", "<p>figures</p>", "figures", "reports@holdings.example", (recipient,), "cfo",
                 "portfolio", period)


@pytest.fixture(params=["local", "s3", "postgres"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalRecordStore(tmp_path / "records")
    if request.param == "postgres":
        return PostgresRecordStore(request.getfixturevalue("postgres_dsn"))
    url = request.getfixturevalue("moto_url")
    client = aws_client("s3", url)
    client.create_bucket(Bucket=BUCKET)
    return S3RecordStore(BUCKET, "exec-reports/deliveries", client=client)


def test_delivery_key_ignores_display_names_and_case_but_not_the_period():
    assert DeliveryKey.for_email(email("CFO <CFO@Holdings.example>")) == DeliveryKey.for_email(email())
    assert DeliveryKey.for_email(email(period="2026-W48")) != DeliveryKey.for_email(email())


def test_a_claim_succeeds_once_and_a_second_claim_on_the_same_key_is_refused(store):
    key = DeliveryKey.for_email(email())
    marker = Record(key, "sending", "ses", "run-1", "2026-11-23T07:00:00+00:00")

    assert store.write(marker, None) is not None
    assert store.write(Record(key, "sending", "ses", "run-2", "2026-11-23T07:00:01+00:00"), None) is None
    assert store.get("ses", key).run == "run-1"


def test_a_claim_against_a_stale_version_is_refused(store):
    key = DeliveryKey.for_email(email())
    first = store.write(Record(key, "failed", "ses", "run-1", "t1"), None)
    seen = store.get("ses", key)
    assert seen.version == first
    second = store.write(Record(key, "sent", "ses", "run-2", "t2", location="ses:m-2"), seen.version)

    # A late writer holding the old version can neither claim nor overwrite the newer record.
    assert second is not None and second != first
    assert store.write(Record(key, "sending", "ses", "run-3", "t3"), seen.version) is None
    assert store.write(Record(key, "failed", "ses", "run-1", "t4"), seen.version) is None
    assert store.get("ses", key).state == "sent"


def test_records_are_kept_per_backend_so_an_outbox_preview_never_counts_as_an_ses_send(store):
    key = DeliveryKey.for_email(email())
    store.write(Record(key, "sent", "outbox", "run-1", "t1"), None)

    assert store.get("outbox", key).state == "sent"
    assert store.get("ses", key) is None


def test_outbox_delivers_once_per_key_and_resend_forces_another_copy(store, tmp_path):
    outbox = OutboxBackend(tmp_path / "outbox")

    first = deliver_once(outbox, email(), store, run="run-1")
    second = deliver_once(outbox, email(), store, run="run-2")
    forced = deliver_once(outbox, email(), store, run="run-3", resend=True)

    assert first.status == "sent" and forced.status == "sent"
    assert second.status == "skipped" and "run run-1" in second.error and "--resend" in second.error
    record = store.get("outbox", DeliveryKey.for_email(email()))
    assert (record.state, record.run, record.location) == ("sent", "run-3", forced.location)


def test_a_failed_delivery_is_sent_again_by_the_next_run(store, tmp_path):
    key = DeliveryKey.for_email(email())
    store.write(Record(key, "failed", "outbox", "run-1", "t1", reason="SES MessageRejected"), None)

    result = deliver_once(OutboxBackend(tmp_path / "outbox"), email(), store, run="run-2")

    assert result.status == "sent"
    assert store.get("outbox", key).state == "sent"


class CountingOutbox(OutboxBackend):
    """The real outbox, counting provider calls: repeated sends overwrite one file, so files can't tell."""

    def __init__(self, folder):
        super().__init__(folder)
        self.calls = 0
        self._count_lock = threading.Lock()

    def send(self, email, claim=None):
        with self._count_lock:
            self.calls += 1
        return super().send(email, claim)


def test_concurrent_workers_on_the_same_message_send_it_exactly_once(tmp_path):
    store = LocalRecordStore(tmp_path / "records")
    outbox = CountingOutbox(tmp_path / "outbox")
    results = []
    start = threading.Barrier(8)

    def worker(number: int) -> None:
        start.wait()
        results.append(deliver_once(outbox, email(), store, run=f"worker-{number}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(r.status for r in results)
    # Losers skip the message as being sent (or already sent) by the winner: never a false failure.
    assert statuses.count("sent") == 1
    assert statuses.count("skipped") == 7
    assert all("worker-" in r.error for r in results if r.status == "skipped")
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


CRASH_AFTER_ACCEPT = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from flows.delivery.message import Email
    from flows.delivery.outbox import OutboxBackend
    from flows.delivery.records import LocalRecordStore, deliver_once

    class DiesAfterAccepting(OutboxBackend):
        def send(self, email, claim=None):
            result = super().send(email, claim)
            os._exit(9)  # the process dies after the provider accepted, before the record is written

    root = Path(sys.argv[1])
    email = Email("CFO weekly", "<p>figures</p>", "figures", "reports@holdings.example",
                  ("cfo@holdings.example",), "cfo", "portfolio", "2026-W47")
    deliver_once(DiesAfterAccepting(root / "outbox"), email, LocalRecordStore(root / "records"), run="crashed-run")
""")


def test_a_crash_between_accept_and_record_is_reported_as_unknown_and_not_resent(tmp_path):
    crashed = subprocess.run([sys.executable, "-c", CRASH_AFTER_ACCEPT, str(tmp_path)],
                             cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True)
    assert crashed.returncode == 9, crashed.stderr
    store = LocalRecordStore(tmp_path / "records")
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1  # the crashed run's message went out
    outbox = CountingOutbox(tmp_path / "outbox")

    # While the claim's lease runs and nobody says its run ended, it is "being sent", not failed.
    live = deliver_once(outbox, email(), store, run="rerun")
    assert live.status == "skipped" and "being sent by run crashed-run" in live.error
    # Once the orchestrator says the run is over, the claim without an outcome is unknown.
    rerun = deliver_once(outbox, email(), store, run="rerun", run_is_over=lambda run: run == "crashed-run")

    assert rerun.status == "failed"
    assert rerun.error.startswith("delivery state unknown: run crashed-run")
    assert "--resend --only cfo/portfolio/cfo@holdings.example" in rerun.error
    assert outbox.calls == 0

    by_hand = CountingOutbox(tmp_path / "outbox-by-hand")  # each run writes its own outbox folder
    # Even --resend never takes a claim that may still be in flight...
    assert deliver_once(by_hand, email(), store, run="by-hand", resend=True).status == "skipped"
    # ...only one whose run is over.
    forced = deliver_once(by_hand, email(), store, run="by-hand", resend=True,
                          run_is_over=lambda run: run == "crashed-run")

    assert forced.status == "sent"
    assert by_hand.calls == 1
    assert store.get("outbox", DeliveryKey.for_email(email())).run == "by-hand"


KILLED_MID_CALL = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from flows.delivery.message import Email
    from flows.delivery.outbox import OutboxBackend
    from flows.delivery.records import LocalRecordStore, deliver_once

    class KilledDuringTheCall(OutboxBackend):
        name = "ses"  # a provider outside the machine: its claim must be on disk before the call

        def send(self, email, claim=None):
            claim.acquire()
            os.kill(os.getpid(), signal.SIGKILL)  # killed while the provider call is in flight

    root = Path(sys.argv[1])
    email = Email("CFO weekly", "<p>figures</p>", "figures", "reports@holdings.example",
                  ("cfo@holdings.example",), "cfo", "portfolio", "2026-W47")
    deliver_once(KilledDuringTheCall(root / "outbox"), email, LocalRecordStore(root / "records"), run="killed-run")
""")


def test_a_claim_taken_right_before_the_provider_call_survives_a_sigkill_of_the_sending_process(tmp_path):
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_CALL, str(tmp_path)],
                            cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr

    record = LocalRecordStore(tmp_path / "records").get("ses", DeliveryKey.for_email(email()))

    assert (record.state, record.run) == ("sending", "killed-run")
    rerun_backend = CountingOutbox(tmp_path / "outbox")
    rerun_backend.name = "ses"
    unknown = deliver_once(rerun_backend, email(), LocalRecordStore(tmp_path / "records"), run="rerun",
                           run_is_over=lambda run: run == "killed-run")
    assert unknown.status == "failed" and unknown.error.startswith("delivery state unknown: run killed-run")
    assert rerun_backend.calls == 0


def test_records_from_the_earlier_one_file_per_key_layout_still_count_after_an_upgrade(tmp_path):
    key = DeliveryKey.for_email(email())
    folder = tmp_path / "records" / "outbox" / "2026-w47"
    folder.mkdir(parents=True)
    # What the file-per-key store wrote for a sent message (its JSON, named by the key).
    (folder / key.file_name).write_bytes(Record(key, "sent", "outbox", "old-run", "2026-11-23T07:00:00+00:00",
                                                location="outbox/old-run/cfo.eml").to_json())
    outbox = CountingOutbox(tmp_path / "outbox")

    again = deliver_once(outbox, email(), LocalRecordStore(tmp_path / "records"), run="new-run")

    assert again.status == "skipped" and "already sent for 2026-W47 by run old-run" in again.error
    assert outbox.calls == 0
    # Imported once: a later store sees the newer record, not the old file again.
    forced = deliver_once(outbox, email(), LocalRecordStore(tmp_path / "records"), run="forced", resend=True)
    assert forced.status == "sent"
    assert LocalRecordStore(tmp_path / "records").get("outbox", key).run == "forced"


def test_default_local_store_sits_beside_the_outbox_folder_of_that_portfolio(monkeypatch, portfolio_copy):
    monkeypatch.delenv("EXEC_REPORTS_RECORDS", raising=False)
    monkeypatch.delenv("EXEC_REPORTS_RECORDS_PATH", raising=False)

    store = open_record_store(load(portfolio_copy))

    # The sample config's outbox_dir is ../outbox, relative to examples/portfolio.yaml; the records sit
    # beside it, not in it, so the outbox holds only run folders.
    assert store.root == portfolio_copy.parent.parent / ".deliveries"


def test_s3_store_is_chosen_from_the_environment_and_shared_by_separate_runs(moto_url, monkeypatch,
                                                                            portfolio_copy, sample_period):
    aws_client("s3", moto_url).create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("EXEC_REPORTS_RECORDS", "s3")
    monkeypatch.setenv("EXEC_REPORTS_RECORDS_BUCKET", BUCKET)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)  # boto3 reads it; no endpoint in the config
    config = load(write_config(portfolio_copy, {"backend": "outbox"}))
    outbox = OutboxBackend(config.outbox_path / "run")

    # Two separately opened stores stand for two workers: the second sees the first one's record.
    first, _ = run_plain(config, sample_period, roles=["ceo"], backend=outbox, records=open_record_store(config))
    second, _ = run_plain(config, sample_period, roles=["ceo"], backend=outbox, records=open_record_store(config))

    assert len(first["sent"]) == 1 and second["sent"] == []
    assert len(second["skipped"]) == 1
    listed = aws_client("s3", moto_url).list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [o["Key"].split("/")[:4] for o in listed] == [["exec-reports", "deliveries", "outbox", "2026-w47"]]


def test_an_unrecognised_error_during_the_provider_call_leaves_the_message_unknown_and_unsent_by_reruns(
        store, tmp_path):
    class ExplodesMidCall(OutboxBackend):
        def send(self, email, claim=None):
            claim.acquire()
            raise RuntimeError("connection reset by a proxy")

    result = deliver_once(ExplodesMidCall(tmp_path / "outbox"), email(), store, run="run-1")
    again_outbox = CountingOutbox(tmp_path / "outbox-2")
    again = deliver_once(again_outbox, email(), store, run="run-2")

    assert result.status == "failed"
    assert result.error.startswith("delivery state unknown: the provider call raised RuntimeError: connection reset")
    assert again.status == "failed" and again.error.startswith("delivery state unknown")
    assert again_outbox.calls == 0
    listed = store.list("outbox", "2026-W47")
    assert [(r.key.label, r.state, r.run) for r in listed] == [("cfo/portfolio/cfo@holdings.example", "unknown",
                                                                 "run-1")]
    assert store.list("outbox", "2026-W48") == [] and store.list("ses", "2026-W47") == []


def test_an_error_before_the_provider_call_records_nothing_so_the_next_run_sends(store, tmp_path):
    class BrokenBeforeSending(OutboxBackend):
        def send(self, email, claim=None):
            raise ValueError("message could not be built")

    with pytest.raises(ValueError):
        deliver_once(BrokenBeforeSending(tmp_path / "outbox"), email(), store, run="run-1")

    assert store.get("outbox", DeliveryKey.for_email(email())) is None
    assert deliver_once(OutboxBackend(tmp_path / "outbox"), email(), store, run="run-2").status == "sent"


def test_only_selectors_pick_messages_by_report_tenant_and_recipient():
    from flows.core.errors import ConfigurationError
    from flows.plan.selection import Selection

    key = DeliveryKey.for_email(email("CFO <CFO@Holdings.example>"))
    other = DeliveryKey.for_email(email("controller@holdings.example"))
    by_recipient = Selection.parse(["cfo/portfolio/CFO@holdings.example"])
    whole_report = Selection.parse(["CFO/portfolio"])

    assert by_recipient.selects(key) and not by_recipient.selects(other)
    assert whole_report.selects(key) and whole_report.selects(other)
    assert not Selection.parse(["cfo/jada"]).selects(key)
    assert not Selection.parse(["cfo:short/portfolio"]).selects(key)
    assert Selection.parse(["cfo:/portfolio"]).selects(key)  # the default variant only
    assert Selection.parse(None) is None
    assert by_recipient.as_strings() == [key.label] == ["cfo/portfolio/cfo@holdings.example"]
    for bad in ("cfo", "cfo/portfolio/not-an-address", "c f o/portfolio", "cfo//x@y.example"):
        with pytest.raises(ConfigurationError, match="--only"):
            Selection.parse([bad])


def test_deliveries_unknown_lists_each_unknown_message_with_the_command_that_resends_exactly_it(
        portfolio_copy, monkeypatch, capsys, tmp_path):
    import datetime as dt

    from flows.operate.cli import main

    monkeypatch.delenv("EXEC_REPORTS_RECORDS", raising=False)
    monkeypatch.delenv("EXEC_REPORTS_RECORDS_PATH", raising=False)
    config = write_config(portfolio_copy, {"backend": "outbox"})
    store = open_record_store(load(config))
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).isoformat()
    dead = Record(DeliveryKey.for_email(email()), "sending", "ses", "run-a", "2026-11-23T07:00:00+00:00",
                  run_name="2026-W47_20261123T070000Z", lease_until="2026-11-23T07:05:00+00:00")
    live = Record(DeliveryKey.for_email(email("controller@holdings.example")), "sending", "ses", "run-b",
                  "2026-11-30T07:00:00+00:00", lease_until=soon)
    done = Record(DeliveryKey.for_email(email("ceo@holdings.example")), "sent", "ses", "run-a", "t")
    for record in (dead, live, done):
        store.write(record, None)

    exit_code = main(["deliveries", "unknown", "--config", str(config), "--period", "2026-W47", "--delivery", "ses"])
    out = capsys.readouterr().out

    assert exit_code == 1
    assert "1 message(s) with an unknown delivery state" in out
    assert "cfo/portfolio/cfo@holdings.example  2026-W47_20261123T070000Z" in out
    assert ("exec-reports run --period 2026-W47 --delivery ses --resend --only cfo/portfolio/cfo@holdings.example"
            in out)
    assert "1 message(s) being sent right now" in out and "cfo/portfolio/controller@holdings.example" in out
    assert "ceo@holdings.example" not in out  # sent: neither unknown nor in flight
    assert "2 sending, 1 sent" in out
    # The outbox's records are another namespace: nothing unknown there.
    assert main(["deliveries", "unknown", "--config", str(config), "--period", "2026-W47"]) == 0
    assert "no message of this period has an unknown delivery state" in capsys.readouterr().out
