"""The last-sent view computed from delivery tables."""

from __future__ import annotations

import datetime as dt

from flows.orchestrator.history import DeliveryTable, summarise_history

T0 = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def row(report, tenant, status, recipients="", reason=""):
    return {"report": report, "tenant": tenant, "status": status, "recipients": recipients, "reason": reason,
            "variant": ""}


def test_the_newest_successful_send_wins_and_keeps_all_its_recipients():
    older = DeliveryTable(T0, "run-1", [row("cfo", "portfolio", "sent", "a@x.example")])
    newer = DeliveryTable(T0 + dt.timedelta(days=7), "run-2", [
        row("cfo", "portfolio", "sent", "a@x.example"), row("cfo", "portfolio", "sent", "b@x.example"),
        row("cto", "jada", "failed", reason="ledger missing")])
    history = summarise_history([older, newer])
    assert history.last_sent[("cfo", "portfolio")] == {
        "time": T0 + dt.timedelta(days=7), "flow_run_id": "run-2", "recipients": ["a@x.example", "b@x.example"],
        "variant": ""}
    assert ("cto", "jada") not in history.last_sent
    assert history.failures == [{"time": T0 + dt.timedelta(days=7), "flow_run_id": "run-2", "report": "cto",
                                 "tenant": "jada", "reason": "ledger missing"}]


def test_a_later_failure_does_not_hide_the_last_success_and_failures_are_newest_first():
    tables = [DeliveryTable(T0 + dt.timedelta(days=i), f"run-{i}",
                            [row("cfo", "portfolio", "sent" if i == 0 else "failed", "a@x.example", f"r{i}")])
              for i in range(15)]
    history = summarise_history(tables, failure_limit=3)
    assert history.last_sent[("cfo", "portfolio")]["flow_run_id"] == "run-0"
    assert [f["reason"] for f in history.failures] == ["r14", "r13", "r12"]
    assert history.as_json()["last_sent"][0]["time"] == T0.isoformat()
