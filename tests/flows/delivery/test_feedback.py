"""SES delivery feedback, end to end over real connections: reports sent through moto's SES server, SES-shaped
notifications published to a moto SNS topic that delivers them to a moto SQS queue, the handler fed the SQS
batch, then the delivery records, the suppression list, the history command and the next run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.delivery import get_backend
from flows.delivery.feedback import NotFeedback, SuppressionList, is_ses_feedback, parse_feedback
from flows.delivery.records import LocalRecordStore
from flows.orchestrator.run import run_plain

from .conftest import REGION, SENDER, aws_client, load, write_config

SES_EVENTS = Path(__file__).resolve().parents[2] / "fixtures" / "ses"


def ses_event(kind: str, message_id: str) -> dict:
    return json.loads((SES_EVENTS / f"{kind}.json").read_text().replace("MESSAGE_ID", message_id))


def test_ses_notifications_become_per_recipient_events_and_anything_else_is_not_feedback():
    envelope = {"Type": "Notification", "MessageId": "sns-1", "Message": json.dumps(ses_event("bounce", "m-1"))}
    [bounce] = parse_feedback(json.dumps(envelope))
    assert (bounce.message_id, bounce.recipient, bounce.outcome, bounce.permanent) == (
        "m-1", "cfo@holdings.example", "bounced", True)
    assert bounce.detail == "Permanent / General bounce: smtp; 550 5.1.1 user unknown"
    assert bounce.tags["period"] == "2026-W47" and bounce.tags["role"] == "cfo"
    [complaint] = parse_feedback(ses_event("complaint", "m-2"))
    assert (complaint.recipient, complaint.outcome, complaint.permanent) == ("ceo@holdings.example", "complained", True)
    [delivered] = parse_feedback(ses_event("delivery", "m-3"))
    assert (delivered.outcome, delivered.permanent) == ("delivered", False)
    transient = ses_event("bounce", "m-4")
    transient["bounce"]["bounceType"] = "Transient"
    assert parse_feedback(transient)[0].permanent is False
    for other in ({"roles": ["cfo"]}, "not json", {"Type": "Notification", "Message": "{}"}, [1, 2]):
        assert not is_ses_feedback(other)
        with pytest.raises(NotFeedback):
            parse_feedback(other)


def test_bounces_complaints_and_deliveries_reach_the_records_suppression_history_and_next_run(
        prefect_harness, moto_url, portfolio_copy, sample_period, tmp_path, monkeypatch, capsys):
    from flows.flow import run_summary, send_exec_reports
    from flows.operate.cli import main
    from flows.trigger.handler import handler

    aws_client("ses", moto_url).verify_email_identity(EmailAddress=SENDER)
    records_path = tmp_path / "records"
    config_path = write_config(portfolio_copy, {
        "backend": "ses", "from_address": SENDER,
        "ses": {"region": REGION, "endpoint_url": moto_url, "check_account_enabled": False,
                "configuration_set": "exec-reports"},
        "operations_address": "ops@holdings.example",
        "records": {"path": str(records_path)}})
    config = load(config_path)
    store = LocalRecordStore(records_path)
    # The first send through the flow, so its delivery table (with the period) is in Prefect's history.
    state = send_exec_reports(config=str(config_path), period=sample_period.label, roles=["cfo", "ceo", "cto"],
                              return_state=True)
    summary = run_summary(state)
    assert summary["failed"] == [] and len(summary["sent"]) == 3
    message_ids = {item["report"]: item["location"].removeprefix("ses:") for item in summary["sent"]}

    # SES -> SNS topic -> SQS queue, as deploy/cloudformation/ses-feedback.yaml wires it, on moto.
    sns, sqs = aws_client("sns", moto_url), aws_client("sqs", moto_url)
    topic = sns.create_topic(Name="exec-reports-feedback")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="exec-reports-feedback")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    for kind, report in (("bounce", "cfo"), ("complaint", "ceo"), ("delivery", "cto")):
        sns.publish(TopicArn=topic, Message=json.dumps(ses_event(kind, message_ids[report])))
    sns.publish(TopicArn=topic, Message=json.dumps(ses_event("bounce", "not-one-of-ours")))
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 4
    batch = {"Records": [{"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs"}
                         for m in received]}

    monkeypatch.setenv("EXEC_REPORTS_RECORDS", "local")
    monkeypatch.setenv("EXEC_REPORTS_RECORDS_PATH", str(records_path))
    answer = handler(batch)
    # The one that matches no delivery record comes back to the queue (retried, then dead-lettered).
    unmatched = [m["MessageId"] for m in received if "not-one-of-ours" in m["Body"]]
    assert answer == {"batchItemFailures": [{"itemIdentifier": unmatched[0]}]}

    feedback = {record.key.role: record.feedback for record in store.list("ses", sample_period.label)}
    assert feedback["cfo"]["cfo@holdings.example"]["outcome"] == "bounced"
    assert "550 5.1.1 user unknown" in feedback["cfo"]["cfo@holdings.example"]["detail"]
    assert feedback["ceo"]["ceo@holdings.example"]["outcome"] == "complained"
    assert feedback["cto"]["cto@holdings.example"]["outcome"] == "delivered"
    suppressions = SuppressionList(store)
    assert sorted(entry.key.recipient for entry in suppressions.active()) == [
        "ceo@holdings.example", "cfo@holdings.example"]
    capsys.readouterr()
    assert main(["history", "--config", str(config_path), "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    outcomes = {(row["report"], row["recipient"]): row["outcome"] for row in history["delivery_feedback"]}
    assert outcomes == {("cfo", "cfo@holdings.example"): "bounced", ("ceo", "ceo@holdings.example"): "complained",
                        ("cto", "cto@holdings.example"): "delivered"}
    assert sorted(row["address"] for row in history["suppressed"]) == ["ceo@holdings.example", "cfo@holdings.example"]
    assert main(["history", "--config", str(config_path)]) == 0
    table = capsys.readouterr().out
    assert "SES delivery feedback per recipient" in table and "550 5.1.1 user unknown" in table
    # A redelivered notification changes nothing.
    assert handler(batch) == answer
    assert len(suppressions.active()) == 2

    # The next run sends nothing to the suppressed addresses, says why, and reports them once.
    next_summary, _ = run_plain(config, sample_period, roles=["cfo", "ceo", "cto"],
                                backend=get_backend(config, "second"), records=store, run="second", resend=True)
    skipped = {item["report"]: item["reason"] for item in next_summary["skipped"]}
    assert set(skipped) == {"cfo", "ceo"} and "suppressed since" in skipped["cfo"]
    assert [item["report"] for item in next_summary["sent"]] == ["cto"]
    assert sorted(entry["address"] for entry in next_summary["delivery_feedback"]) == [
        "ceo@holdings.example", "cfo@holdings.example"]
    assert any("cfo@holdings.example is now suppressed" in warning for warning in next_summary["warnings"])
    third, _ = run_plain(config, sample_period, roles=["cto"], backend=get_backend(config, "third"), records=store,
                         run="third", resend=True)
    assert third["delivery_feedback"] == []  # reported once

    # An operator clears one address; it is mailed again.
    assert main(["suppression", "clear", "cfo@holdings.example", "--config", str(config_path)]) == 0
    assert "cleared cfo@holdings.example" in capsys.readouterr().out
    assert [entry.key.recipient for entry in suppressions.active()] == ["ceo@holdings.example"]
    after_clear, _ = run_plain(config, sample_period, roles=["cfo"], backend=get_backend(config, "fourth"),
                               records=store, run="fourth", resend=True)
    assert [item["report"] for item in after_clear["sent"]] == ["cfo"]


class CountingStore(LocalRecordStore):
    """The real local store, counting listings per namespace (a listing is one request per entry on S3)."""

    def __init__(self, root):
        super().__init__(root)
        self.listings: dict[str, int] = {}

    def list(self, backend, period):
        self.listings[backend] = self.listings.get(backend, 0) + 1
        return super().list(backend, period)


def test_a_run_checks_each_recipient_against_the_suppression_list_without_listing_it_per_report(
        portfolio_copy, sample_period, tmp_path):
    from flows.delivery.feedback import SUPPRESSION_NAMESPACE
    from flows.delivery.outbox import OutboxBackend

    config = load(write_config(portfolio_copy, {"backend": "outbox"}))
    store = CountingStore(tmp_path / "records")
    SuppressionList(store).suppress("cfo@holdings.example", "bounced: mailbox does not exist", "m-1",
                                    "2026-11-20T07:00:00+00:00")

    summary, _ = run_plain(config, sample_period, backend=OutboxBackend(tmp_path / "outbox"), records=store)

    skipped = {item["report"]: item["reason"] for item in summary["skipped"]}
    assert list(skipped) == ["cfo"] and "suppressed since 2026-11-20" in skipped["cfo"]
    assert len(summary["sent"]) == 8  # the other four portfolio briefs and four GM briefs
    # Nine reports; the list itself is read once, for the run summary's newly suppressed addresses.
    assert store.listings.get(SUPPRESSION_NAMESPACE) == 1
