"""The Prefect flow end to end against a real (temporary) Prefect API."""

from __future__ import annotations

import email
import json
from email import policy

import pytest

from tests.conftest import SAMPLE_PERIOD

pytestmark = pytest.mark.usefixtures("prefect_harness")


def artifacts_of(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))


def test_the_flow_delivers_every_role_to_the_outbox_and_records_artifacts(portfolio_copy):
    from flows.flow import run_summary, send_exec_reports

    state = send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, return_state=True)
    assert state.is_completed(), state.message
    summary = run_summary(state)
    assert summary["period"] == SAMPLE_PERIOD and summary["failed"] == []
    # five portfolio reports, and the tenant-scope GM brief once per tenant
    assert sorted(item["report"] for item in summary["sent"]) == ["accounting", "ceo", "cfo", "cmo", "cto",
                                                                  "gm", "gm", "gm", "gm"]

    outbox = portfolio_copy.parent.parent / "outbox" / summary["run"]
    emls = sorted(outbox.glob("*.eml"))
    assert len(emls) == 9 and len(list(outbox.glob("*.html"))) == 9
    message = email.message_from_bytes(emls[0].read_bytes(), policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"

    artifacts = artifacts_of(state.state_details.flow_run_id)
    keys = sorted(artifact.key for artifact in artifacts if artifact.key)
    # One artifact per role holding its reports (not one per report), beside the delivery table, the checks
    # and the status board.
    assert keys == ["exec-reports-checks", "exec-reports-deliveries", "exec-reports-status", "reports-accounting",
                    "reports-ceo", "reports-cfo", "reports-cmo", "reports-cto", "reports-gm"]
    [gm] = [artifact for artifact in artifacts if artifact.key == "reports-gm"]
    # The four GM briefs, each under its own subject and report key.
    key_lines = sorted(line for line in gm.data.splitlines() if line.endswith(f"` · {SAMPLE_PERIOD}"))
    assert key_lines == [f"`{tenant}-gm` · {SAMPLE_PERIOD}" for tenant in ("dangerouscentaur", "jada",
                                                                          "queenofsandiego", "quickdumpnow")]
    assert gm.data.startswith(f"# gm: 4 report(s), {SAMPLE_PERIOD}")


def test_the_run_returns_a_brief_summary_to_prefect_and_the_whole_one_to_the_process_that_ran_it(portfolio_copy):
    from flows.flow import RUN_DETAILS, run_summary, send_exec_reports

    (portfolio_copy.parent / "data" / "jada" / "ledger.csv").unlink()
    state = send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, roles=["cfo", "gm"], return_state=True)
    whole = run_summary(state)
    # What Prefect walks and persists: counts and ids only, no recipients, subjects, reasons or checks.
    brief = state.result(raise_on_failure=False).summary
    assert brief == {"period": SAMPLE_PERIOD, "run": whole["run"],
                     "counts": {"sent": len(whole["sent"]), "dry_run": 0, "failed": 1, "skipped": 0,
                                "checks": len(whole["checks"]), "warnings": len(whole["warnings"]),
                                "actions": len(whole["actions"])},
                     "failed": [{"report": "gm", "tenant": "jada"}]}
    assert len(json.dumps(brief)) < 500 < len(json.dumps(whole))
    # Another process (a deployment's reader) gets the brief one from Prefect.
    RUN_DETAILS._summaries.clear()
    assert run_summary(state) == brief


def test_the_flow_fails_after_delivering_everything_it_could(portfolio_copy):
    from flows.core.errors import RunFailures
    from flows.flow import run_summary, send_exec_reports

    (portfolio_copy.parent / "data" / "jada" / "ledger.csv").unlink()
    state = send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, return_state=True)
    assert state.is_failed()
    # The Failed state carries the summary inside an exception Prefect can resolve (a dict there makes the
    # engine log a TypeError with the whole summary); its text is the short message, never the addresses.
    carried = state.result(raise_on_failure=False)
    assert isinstance(carried, RunFailures)
    assert "@" not in repr(carried) and "@" not in str(carried) and str(carried) == state.message
    with pytest.raises(RunFailures):
        state.result()
    summary = run_summary(state)
    # The portfolio briefs leave JADA out and go to everyone; only JADA's own GM brief cannot be made.
    assert sorted(item["report"] for item in summary["sent"]) == [
        "accounting", "ceo", "cfo", "cmo", "cto", "gm", "gm", "gm"]
    failed = {(item["report"], item["tenant"]): item["reason"] for item in summary["failed"]}
    assert set(failed) == {("gm", "jada")}
    assert "jada/ledger.csv" in failed[("gm", "jada")]
    assert "1 failure(s)" in state.message

    [alert] = (portfolio_copy.parent.parent / "outbox" / summary["run"]).glob("portfolio-operations-alert--*.eml")
    message = email.message_from_bytes(alert.read_bytes(), policy=policy.default)
    assert message["To"] == "ops@holdings.example"
    # The alert names the run by its readable name, not Prefect's random one.
    assert message["Subject"] == f"[exec-reports] run Failed: {SAMPLE_PERIOD} all roles"
    text = message.get_body(("plain",)).get_content()
    assert "1 failure(s)" in text and "gm / jada:" in text and "jada/ledger.csv" in text
    assert "Delivered anyway: 8 message(s)" in text


def task_runs_of(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        return {run.name: run for run in runs}, client.read_flow_run(flow_run_id)


def table(artifact) -> list[dict]:
    return json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data


def test_the_run_page_says_what_failed_and_why(portfolio_copy):
    """Issue 28, through Prefect's API: the failed report's task is Failed with the reason (it was green),
    the run's state message names it, the tables put failures first with a short reason before the long
    cells, the whole reasons are a second artifact, the status board shows recipients, and the report
    artifacts carry their charts as images (they were broken `chart:N` links)."""
    from flows.orchestrator.history import STATUS_COLUMNS
    from flows.orchestrator.run_page import DELIVERY_COLUMNS, FAILURES_KEY
    from flows.orchestrator.run_page import _text as as_markdown_text

    (portfolio_copy.parent / "data" / "jada" / "ledger.csv").unlink()
    state = send_exec_reports_of(portfolio_copy, roles=["cfo", "gm"])
    assert state.is_failed()
    flow_run_id = state.state_details.flow_run_id
    tasks, flow_run = task_runs_of(flow_run_id)

    gm = tasks["render and deliver gm"].state
    assert gm.type.value == "FAILED"
    # the cause first (one clause per tenant and cause, not one per metric), paths cut to their last parts
    assert gm.message.startswith("1 of gm's message(s) failed: gm/jada: required metric unavailable: jada: file "
                                 "not found: …/jada/ledger.csv (finance.")
    assert tasks["render and deliver cfo"].state.type.value == "COMPLETED"  # JADA left out, the rest sent
    assert flow_run.state.type.value == "FAILED"
    assert flow_run.state.message.startswith("1 failure(s): gm/jada: required metric unavailable: jada: file not "
                                             "found: …/jada/ledger.csv (finance.")
    assert "…/jada/ledger.csv" in flow_run.state.message and len(flow_run.state.message) < 300

    artifacts = {artifact.key: artifact for artifact in artifacts_of(flow_run_id) if artifact.key}
    deliveries = table(artifacts["exec-reports-deliveries"])
    assert [list(row) for row in deliveries] == [list(DELIVERY_COLUMNS)] * len(deliveries)
    assert [(row["status"], row["report"], row["tenant"]) for row in deliveries][0] == ("failed", "gm", "jada")
    assert all(row["status"] != "failed" for row in deliveries[1:])
    assert all(len(row["reason"]) <= 100 for row in deliveries)
    whole = artifacts[FAILURES_KEY].data
    # every word of the reason, the absolute paths too (as Markdown text: escaped, never emphasis)
    assert whole.startswith(f"# 1 failure(s), {SAMPLE_PERIOD}")
    assert as_markdown_text(str(portfolio_copy.parent / "data" / "jada" / "ledger.csv")) in whole

    board = table(artifacts["exec-reports-status"])
    assert [list(row) for row in board] == [list(STATUS_COLUMNS)] * len(board)
    assert (board[0]["last_outcome"], board[0]["report"], board[0]["tenant"]) == ("FAILED", "gm", "jada")
    assert board[0]["recipients"] == "gm@jada.example" and "…/jada/ledger.csv" in board[0]["reason"]
    assert {row["report"]: row["recipients"] for row in board[1:]}["cfo"] == "cfo@holdings.example"

    gm = artifacts["reports-gm"].data
    assert "](chart:" not in gm
    # One chart per general manager brief that rendered (JADA's failed above), as PNGs.
    assert gm.count("](data:image/png;base64,iVBORw0KGgo") == 3


def send_exec_reports_of(config, **parameters):
    from flows.flow import send_exec_reports

    return send_exec_reports(config=str(config), period=SAMPLE_PERIOD, return_state=True, **parameters)


def test_delivery_history_shows_the_last_send_per_report_and_the_failures(portfolio_copy):
    from flows.flow import fetch_delivery_tables, send_exec_reports
    from flows.orchestrator.history import summarise_history

    send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, roles=["cfo"], return_state=True)
    (portfolio_copy.parent / "data" / "jada" / "ledger.csv").unlink()
    # For JADA alone there is no tenant left to report on, so the CFO brief fails.
    failed_run = send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, roles=["cfo"], tenants=["jada"],
                                   return_state=True)
    history = summarise_history(fetch_delivery_tables())
    newest_failure = history.failures[0]
    assert newest_failure["report"] == "cfo" and "jada/ledger.csv" in newest_failure["reason"]
    assert newest_failure["flow_run_id"] == str(failed_run.state_details.flow_run_id)
    last_cfo = history.last_sent[("cfo", "portfolio")]
    assert last_cfo["recipients"] == ["cfo@holdings.example"]
    assert last_cfo["time"] < newest_failure["time"]


def test_the_status_board_artifact_keeps_the_latest_per_report_and_tenant_across_runs(portfolio_copy):
    from flows.flow import read_status_board, send_exec_reports

    first = send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, roles=["cfo", "gm"],
                              tenants=["jada", "quickdumpnow"], return_state=True)
    assert first.is_completed(), first.message
    (portfolio_copy.parent / "data" / "jada" / "ledger.csv").unlink()
    second = send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, roles=["cfo", "gm"],
                               tenants=["jada", "quickdumpnow"], resend=True, return_state=True)
    assert second.is_failed()
    board = {(row["report"], row["tenant"]): row for row in read_status_board()}
    # jada's GM brief went out in the first run and failed in the second: both are on the board.
    jada = board[("gm", "jada")]
    assert jada["last_outcome"] == "FAILED" and "jada/ledger.csv" in jada["last_failure_reason"]
    assert jada["last_sent_run"] == f"{SAMPLE_PERIOD} cfo,gm for jada,quickdumpnow"
    assert jada["last_failure_run"] == f"{SAMPLE_PERIOD} cfo,gm for jada,quickdumpnow (resend)"
    assert board[("gm", "quickdumpnow")]["last_outcome"] == "sent"
    assert board[("gm", "quickdumpnow")]["last_sent_run"].endswith("(resend)")
    # a dry run changes nothing on the board
    send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, roles=["gm"], dry_run=True, return_state=True)
    assert {(row["report"], row["tenant"]): row for row in read_status_board()} == board


def test_the_flow_reports_on_the_period_given_and_dry_run_sends_nothing(portfolio_copy):
    from flows.flow import run_summary, send_exec_reports

    state = send_exec_reports(config=str(portfolio_copy), period="2026-10", roles=["cfo"], dry_run=True,
                              return_state=True)
    summary = run_summary(state)
    assert summary["period"] == "2026-10"
    assert [item["report"] for item in summary["dry_run"]] == ["cfo"] and summary["sent"] == []
    assert not (portfolio_copy.parent.parent / "outbox").exists()


def test_a_run_after_a_permanent_bounce_skips_the_address_and_tells_operations_once(portfolio_copy):
    from flows.core.config import load_config
    from flows.delivery.feedback import SuppressionList
    from flows.delivery.records import open_record_store
    from flows.flow import run_summary, send_exec_reports

    store = open_record_store(load_config(portfolio_copy))
    assert SuppressionList(store).suppress("cfo@holdings.example", "Permanent / General bounce: 550 user unknown",
                                           "ses-message-1", "2026-11-24T07:01:02Z")
    state = send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, roles=["cfo", "cto"],
                              return_state=True)
    assert state.is_completed(), state.message
    summary = run_summary(state)
    assert [item["report"] for item in summary["sent"]] == ["cto"]
    assert [item["report"] for item in summary["skipped"]] == ["cfo"]
    assert [entry["address"] for entry in summary["delivery_feedback"]] == ["cfo@holdings.example"]
    [notice] = (portfolio_copy.parent.parent / "outbox" / summary["run"]).glob("portfolio-operations-alert--*.eml")
    message = email.message_from_bytes(notice.read_bytes(), policy=policy.default)
    assert message["Subject"].startswith("[exec-reports] 1 address(es) suppressed after bounces or complaints")
    text = message.get_body(("plain",)).get_content()
    assert "cfo@holdings.example" in text and "550 user unknown" in text and "suppression clear" in text
    again = run_summary(send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, roles=["cfo"],
                                          resend=True, return_state=True))
    assert again["delivery_feedback"] == [] and [item["report"] for item in again["skipped"]] == ["cfo"]


def test_exec_reports_run_uses_the_api_prefect_already_has_in_this_process_and_starts_no_server(monkeypatch):
    """Inside a process where Prefect is already set up (this test harness), `run` must not start the
    long-lived local server: the configured API is the one Prefect's settings name."""
    from prefect.settings import PREFECT_API_URL

    from flows.operate.local_server import configured_api_url

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert PREFECT_API_URL.value()
    assert configured_api_url() == PREFECT_API_URL.value()


def test_a_run_the_cli_starts_sends_no_heartbeats_and_a_deployment_style_call_keeps_them(portfolio_copy, monkeypatch):
    from prefect.settings import get_current_settings

    import flows.flow as flow_module

    seen = []
    real_run_reports = flow_module.run_reports

    def observed(*args, **kwargs):
        seen.append(get_current_settings().flows.heartbeat_frequency)
        return real_run_reports(*args, **kwargs)

    monkeypatch.setattr(flow_module, "run_reports", observed)
    local = flow_module.run_locally(config=str(portfolio_copy), period=SAMPLE_PERIOD, roles=["cfo"], dry_run=True)
    plain = flow_module.send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, roles=["cfo"],
                                          dry_run=True, return_state=True)
    assert local.is_completed() and plain.is_completed()
    assert seen[0] is None and seen[1] is not None
    assert get_current_settings().flows.heartbeat_frequency is not None  # for that run only
