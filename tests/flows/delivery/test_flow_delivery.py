"""Delivery through the Prefect flow and the CLI: backend switch, re-run, --resend, preflight, secrets."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from flows.operate.cli import main
from tests.conftest import SAMPLE_PERIOD

from .conftest import REGION, load, write_config

pytestmark = pytest.mark.usefixtures("prefect_harness")


def artifact_texts(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return [json.dumps(a.data, default=str) + (a.description or "") for a in artifacts]


def test_smtp_chosen_at_run_time_sends_once_per_period_and_resend_sends_again(
        smtp_server, monkeypatch, portfolio_copy, capsys):
    from flows.flow import run_summary, send_exec_reports

    # Everything but the CA file comes from the environment, as an operator's repos.env would set it.
    monkeypatch.setenv("SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("SMTP_USERNAME", smtp_server.username)
    monkeypatch.setenv("SMTP_PASSWORD", smtp_server.password)
    config = str(write_config(portfolio_copy, {"backend": "outbox", "smtp": {"ca_file": smtp_server.ca_file}}))

    first = send_exec_reports(config=config, period=SAMPLE_PERIOD, roles=["ceo"], delivery="smtp",
                              return_state=True)
    second = send_exec_reports(config=config, period=SAMPLE_PERIOD, roles=["ceo"], delivery="smtp",
                               return_state=True)
    after_rerun = len(smtp_server.received)
    exit_code = main(["run", "--config", config, "--period", SAMPLE_PERIOD, "--roles", "ceo",
                      "--delivery", "smtp", "--resend"])

    assert first.is_completed() and second.is_completed()
    assert [s["recipients"] for s in run_summary(first)["sent"]] == [["ceo@holdings.example"]]
    rerun = run_summary(second)
    assert rerun["sent"] == [] and [s["recipients"] for s in rerun["skipped"]] == [["ceo@holdings.example"]]
    assert after_rerun == 1
    assert exit_code == 0 and "1 sent, 0 failed, 0 skipped" in capsys.readouterr().out
    assert len(smtp_server.received) == 2
    assert all(r.over_tls and r.authenticated for r in smtp_server.received)
    # Nothing went to the outbox the file names: the run-time choice won.
    assert not list((portfolio_copy.parent.parent / "outbox").glob("*/*.eml"))

    for state in (first, second):
        texts = artifact_texts(state.state_details.flow_run_id)
        assert texts and not any(smtp_server.password in text for text in texts)
        assert smtp_server.password not in json.dumps([state.result(), run_summary(state)], default=str)


def test_an_unverified_ses_sender_fails_the_run_once_before_anything_is_sent(moto_url, monkeypatch,
                                                                             portfolio_copy, capsys):
    from .conftest import moto_sent_raw_messages

    monkeypatch.setenv("SES_REGION", REGION)
    monkeypatch.setenv("SES_ENDPOINT_URL", moto_url)
    config = write_config(portfolio_copy, {"backend": "outbox", "operations_address": "ops@holdings.example",
                                           "ses": {"check_account_enabled": False}})
    monkeypatch.setenv("EXEC_REPORTS_DELIVERY", "ses")  # the make run DELIVERY=ses path

    exit_code = main(["run", "--config", str(config), "--period", SAMPLE_PERIOD])

    # The command asks SES before it starts a run: one line, no run, no alert.
    # (stderr also holds what the in-process test servers log, hence the filter)
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exit_code == 1
    assert line.startswith("error: SES sender identity reports@holdings.example is not verified in us-east-1")
    assert line.endswith("to an identity that is verified. (no run was started: fix that and run again, or run "
                         "with --delivery outbox or --dry-run)")
    assert moto_sent_raw_messages(moto_url) == []
    assert load(config).delivery.backend == "outbox"  # the file is untouched; only this run switched
    assert not (portfolio_copy.parent.parent / "outbox").exists()

    # A run started some other way (a deployment, the flow called directly) fails once, before anything is
    # sent, and the operations alert, which could not go through SES either, waits in the local outbox.
    from flows.flow import send_exec_reports

    state = send_exec_reports(config=str(config), period=SAMPLE_PERIOD, delivery="ses", return_state=True)
    assert state.is_failed() and "is not verified" in state.message
    assert moto_sent_raw_messages(moto_url) == []
    alerts = list((portfolio_copy.parent.parent / "outbox").glob("*/portfolio-operations-alert--*.eml"))
    assert len(alerts) == 1
    assert "is not verified" in email_text(alerts[0])


def email_text(path) -> str:
    import email
    from email import policy

    return email.message_from_bytes(path.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()


def test_smtp_password_and_ses_credentials_can_come_from_prefect_aws_blocks(
        smtp_server, moto_url, portfolio_copy, sample_period, monkeypatch, tmp_path):
    from prefect_aws import AwsCredentials
    from prefect_aws.secrets_manager import AwsSecret

    from flows.delivery import get_backend
    from flows.delivery.ses import SesBackend
    from flows.orchestrator.run import run_plain

    from .conftest import aws_client

    aws_client("secretsmanager", moto_url).create_secret(Name="exec-reports/smtp", SecretString=smtp_server.password)
    aws_client("ses", moto_url).verify_email_identity(EmailAddress="reports@holdings.example")
    credentials = AwsCredentials(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION,
                                 aws_client_parameters={"endpoint_url": moto_url})
    credentials.save("exec-reports-test-aws", overwrite=True)
    AwsSecret(aws_credentials=credentials, secret_name="exec-reports/smtp").save("exec-reports-test-smtp",
                                                                                overwrite=True)
    config = load(write_config(portfolio_copy, {
        "backend": "smtp",
        "smtp": {"host": smtp_server.host, "port": smtp_server.port, "username": smtp_server.username,
                 "ca_file": smtp_server.ca_file, "password_secret_block": "exec-reports-test-smtp"},
        "ses": {"region": REGION, "endpoint_url": moto_url, "credentials_block": "exec-reports-test-aws",
                "check_account_enabled": False}}))

    # From here on only the blocks hold credentials: the boto3 chain would find none.
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))

    summary, _ = run_plain(config, sample_period, roles=["ceo"], backend=get_backend(config, "run"))
    ses = SesBackend(config.delivery.ses, config.delivery.from_address)
    ses.preflight()

    assert len(summary["sent"]) == 1 and smtp_server.received[0].authenticated
    assert ses.client.meta.endpoint_url == moto_url and ses.limiter.max_per_second == 1.0


def test_claims_of_a_finished_flow_run_are_over_at_once_and_unknown_ids_fall_back_to_the_lease(portfolio_copy):
    """The flow's liveness check for delivery claims asks Prefect about the run that holds a claim."""
    import uuid

    from flows.delivery.records import DeliveryKey, Record, claim_is_over, now_utc
    from flows.flow import prefect_run_is_over, send_exec_reports

    state = send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, roles=["ceo"], dry_run=True,
                              return_state=True)
    finished = str(state.state_details.flow_run_id)
    lease = (now_utc() + dt.timedelta(minutes=5)).isoformat()
    key = DeliveryKey(SAMPLE_PERIOD, "portfolio", "ceo", "", "ceo@holdings.example")

    assert prefect_run_is_over(finished) is True
    assert prefect_run_is_over(str(uuid.uuid4())) is None  # not a run this API knows
    assert prefect_run_is_over("2026-W47_20261123T070000Z-1a2b3c4d") is None  # a plain run's id
    held_by_finished = Record(key, "sending", "ses", finished, "t", lease_until=lease)
    held_by_stranger = Record(key, "sending", "ses", str(uuid.uuid4()), "t", lease_until=lease)
    assert claim_is_over(held_by_finished, prefect_run_is_over) is True
    assert claim_is_over(held_by_stranger, prefect_run_is_over) is False
