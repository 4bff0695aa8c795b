"""Agenda items handed to a task system: a real local HTTP server (pytest-httpserver)."""

from __future__ import annotations

import json
import logging

import pytest
from werkzeug import Response

from flows.core.config import load_config
from flows.delivery.records import LocalRecordStore
from flows.delivery.tasks import action_id, hand_off_actions

TOKEN = "tasks-token-3f9c2b7d1e"
ACTIONS = [
    {"text": "Turn on PITR for the bookings table", "owner": "cto", "tenant": "jada", "priority": "high",
     "due": "2026-12-06", "heading": "JADA", "report": "cto"},
    {"text": "Claim the Google Business profile", "owner": "cmo", "tenant": "queenofsandiego", "priority": "medium",
     "due": "", "heading": "QueenofSanDiego", "report": "cmo"},
    # The same action listed by a second report: one task, not two.
    {"text": "turn on PITR for the  bookings table", "owner": "cto", "tenant": "jada", "priority": "high",
     "due": "2026-12-06", "heading": "Agenda", "report": "ceo"},
]


@pytest.fixture
def tasks_config(portfolio_copy, httpserver, monkeypatch):
    monkeypatch.setenv("EXEC_REPORTS_TASKS_TOKEN", TOKEN)
    text = portfolio_copy.read_text() + f"\ntasks:\n  url: {httpserver.url_for('/tasks')}\n  attempts: 3\n"
    portfolio_copy.write_text(text)
    return load_config(portfolio_copy)


def posted(httpserver) -> list[dict]:
    return [json.loads(request.data) for request, _ in httpserver.log if request.path == "/tasks"]


def test_each_action_is_posted_once_with_a_stable_id_and_the_bearer_token(tasks_config, httpserver, tmp_path):
    httpserver.expect_request("/tasks", method="POST").respond_with_json({"ok": True}, status=201)
    store = LocalRecordStore(tmp_path / "records")
    result = hand_off_actions(ACTIONS, "2026-W47", tasks_config, store, run="r1", sleep=lambda _: None)
    bodies = posted(httpserver)
    assert len(bodies) == 2 and len(result.posted) == 2 and result.failed == []
    first = bodies[0]
    assert first == {"id": action_id("2026-W47", ACTIONS[0]), "period": "2026-W47",
                     "title": "Turn on PITR for the bookings table", "owner_role": "cto", "tenant": "jada",
                     "priority": "high", "due": "2026-12-06", "source": {"report": "cto", "heading": "JADA"}}
    request = httpserver.log[0][0]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Idempotency-Key"] == first["id"]
    assert bodies[1]["due"] is None


def test_a_rerun_of_the_period_posts_nothing_new_and_a_new_period_posts_again(tasks_config, httpserver, tmp_path):
    httpserver.expect_request("/tasks", method="POST").respond_with_json({"ok": True})
    store = LocalRecordStore(tmp_path / "records")
    hand_off_actions(ACTIONS, "2026-W47", tasks_config, store, run="r1", sleep=lambda _: None)
    again = hand_off_actions(ACTIONS, "2026-W47", tasks_config, store, run="r2", sleep=lambda _: None)
    assert len(posted(httpserver)) == 2
    assert again.posted == [] and len(again.already_posted) == 2
    next_week = hand_off_actions(ACTIONS, "2026-W48", tasks_config, store, run="r3", sleep=lambda _: None)
    assert len(next_week.posted) == 2 and len(posted(httpserver)) == 4
    assert action_id("2026-W48", ACTIONS[0]) != action_id("2026-W47", ACTIONS[0])


def test_a_server_error_is_retried_and_then_succeeds(tasks_config, httpserver, tmp_path):
    responses = iter([Response("overloaded", status=500), Response("busy", status=503),
                      Response('{"ok": true}', status=200)])
    httpserver.expect_request("/tasks", method="POST").respond_with_handler(lambda request: next(responses))
    slept = []
    result = hand_off_actions(ACTIONS[:1], "2026-W47", tasks_config, LocalRecordStore(tmp_path / "r"), run="r1",
                              sleep=slept.append)
    assert len(result.posted) == 1 and result.failed == []
    assert len(posted(httpserver)) == 3 and len(slept) == 2
    assert {b["id"] for b in posted(httpserver)} == {action_id("2026-W47", ACTIONS[0])}  # same id on every retry


def test_a_refused_action_fails_at_once_is_listed_and_is_tried_again_next_run(tasks_config, httpserver, tmp_path,
                                                                               caplog):
    httpserver.expect_request("/tasks", method="POST").respond_with_data(f"bad token {TOKEN}", status=400)
    store = LocalRecordStore(tmp_path / "records")
    with caplog.at_level(logging.DEBUG):
        result = hand_off_actions(ACTIONS[:1], "2026-W47", tasks_config, store, run="r1", sleep=lambda _: None)
    [failure] = result.failed
    assert failure["reason"] == "HTTP 400: bad token ***"
    assert len(posted(httpserver)) == 1
    assert TOKEN not in caplog.text and TOKEN not in json.dumps(result.as_json())
    hand_off_actions(ACTIONS[:1], "2026-W47", tasks_config, store, run="r2", sleep=lambda _: None)
    assert len(posted(httpserver)) == 2  # failed, not sent: the next run tries again


def test_an_unreachable_endpoint_gives_up_after_the_configured_attempts(tasks_config, tmp_path):
    from flows.core.config import TasksConfig

    dead = tasks_config.model_copy(update={"tasks": TasksConfig(url="http://127.0.0.1:9/tasks", attempts=2,
                                                                timeout_seconds=1)})
    result = hand_off_actions(ACTIONS[:1], "2026-W47", dead, LocalRecordStore(tmp_path / "r"), run="r1",
                              sleep=lambda _: None)
    [failure] = result.failed
    assert failure["reason"].startswith("gave up after 2 attempts: ConnectError")


def test_the_token_never_goes_in_the_config_file(portfolio_copy):
    from flows.core.errors import ConfigurationError

    portfolio_copy.write_text(portfolio_copy.read_text() + "\ntasks:\n  url: https://tasks.example/api\n  token: x\n")
    with pytest.raises(ConfigurationError, match="a token never goes in the config file"):
        load_config(portfolio_copy)
    portfolio_copy.write_text(portfolio_copy.read_text().replace("https://tasks.example/api\n  token: x",
                                                                 "http://tasks.example/api"))
    with pytest.raises(ConfigurationError, match="must be an https:// URL"):
        load_config(portfolio_copy)


@pytest.mark.usefixtures("prefect_harness")
def test_action_failures_are_listed_without_failing_the_delivered_reports(tasks_config, httpserver, portfolio_copy):
    from flows.flow import run_summary, send_exec_reports

    httpserver.expect_request("/tasks", method="POST").respond_with_data("down", status=500)
    reports = portfolio_copy.parent.parent / "reports"
    (reports / "agenda.md").write_text(
        "---\nrole: agenda\ntitle: Agenda\nsubject: Agenda\nscope: portfolio\nmetrics: [finance.cash_on_hand]\n"
        "recipients: [ceo@holdings.example]\n---\n## JADA\n\n{{ action('Call the marina', priority='high') }}\n")
    # The agenda report's item and the accounting brief's decisions are handed off; every one fails.
    state = send_exec_reports(config=str(portfolio_copy), period="2026-W47", roles=["agenda", "accounting"],
                              return_state=True)
    summary = run_summary(state)
    assert state.is_completed()
    assert sorted(item["report"] for item in summary["sent"]) == ["accounting", "agenda"]
    hand_off = summary["action_hand_off"]
    marina = [f for f in hand_off["failed"] if f["text"] == "Call the marina"]
    assert hand_off["posted"] == 0 and len(marina) == 1
    assert all("gave up after 3 attempts: HTTP 500: down" in f["reason"] for f in hand_off["failed"])
    assert any(w.startswith("action not handed off: Call the marina") for w in summary["warnings"])
