"""The Prefect flow end to end against a real (temporary) Prefect API."""

from __future__ import annotations

import email
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
    from flows.flow import send_exec_reports

    state = send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["period"] == SAMPLE_PERIOD and summary["failed"] == []
    assert sorted(item["report"] for item in summary["sent"]) == ["accounting", "ceo", "cfo", "cmo", "cto"]

    outbox = portfolio_copy.parent.parent / "outbox" / summary["run"]
    emls = sorted(outbox.glob("*.eml"))
    assert len(emls) == 5 and len(list(outbox.glob("*.html"))) == 5
    message = email.message_from_bytes(emls[0].read_bytes(), policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"

    keys = {artifact.key for artifact in artifacts_of(state.state_details.flow_run_id)}
    assert "exec-reports-deliveries" in keys
    assert {f"report-portfolio-{role}" for role in ("ceo", "cto", "cfo", "cmo", "accounting")} <= keys


def test_the_flow_fails_after_delivering_everything_it_could(portfolio_copy):
    from flows.flow import send_exec_reports

    (portfolio_copy.parent / "data" / "jada" / "channels.csv").unlink()
    state = send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, return_state=True)
    assert state.is_failed()
    summary = state.result(raise_on_failure=False)
    assert sorted(item["report"] for item in summary["sent"]) == ["accounting", "cfo", "cto"]
    failed = {item["report"]: item["reason"] for item in summary["failed"]}
    assert set(failed) == {"ceo", "cmo"}
    assert "jada/channels.csv" in failed["cmo"]
    assert "2 failure(s)" in state.message


def test_the_flow_reports_on_the_period_given_and_dry_run_sends_nothing(portfolio_copy):
    from flows.flow import send_exec_reports

    state = send_exec_reports(config=str(portfolio_copy), period="2026-10", roles=["cfo"], dry_run=True,
                              return_state=True)
    summary = state.result()
    assert summary["period"] == "2026-10"
    assert [item["report"] for item in summary["dry_run"]] == ["cfo"] and summary["sent"] == []
    assert not (portfolio_copy.parent.parent / "outbox").exists()
