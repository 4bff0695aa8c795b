"""SES against moto's server mode over real HTTP: what arrives is read back from /moto-api/data.json."""

from __future__ import annotations

import pytest

from flows.core.errors import DeliveryError
from flows.delivery import get_backend
from flows.delivery.records import LocalRecordStore
from flows.orchestrator.run import run_plain

from .conftest import REGION, SENDER, aws_client, load, moto_sent_raw_messages, parse_mime, write_config

ARCHIVE = "archive@holdings.example"


def ses_delivery(url: str, **extra) -> dict:
    # moto has no GetAccountSendingEnabled; the paused-account preflight is covered with Stubber.
    return {"backend": "ses", "from_address": f"Executive Reports <{SENDER}>",
            "ses": {"region": REGION, "endpoint_url": url, "check_account_enabled": False, **extra.pop("ses", {})},
            **extra}


def verify_sender(url: str) -> None:
    aws_client("ses", url).verify_email_identity(EmailAddress=SENDER)


def test_each_recipient_gets_the_outbox_mime_with_archive_bcc_tags_and_configuration_set(
        moto_url, portfolio_copy, sample_period, tmp_path):
    verify_sender(moto_url)
    config = load(write_config(
        portfolio_copy,
        ses_delivery(moto_url, bcc_address=ARCHIVE,
                     ses={"configuration_set": "exec-reports", "tags": {"app": "exec-reports"}}),
        recipients={"ceo": ["finance.lead@holdings.example", "controller@holdings.example"]}))

    summary, rendered = run_plain(config, sample_period, roles=["ceo"], backend=get_backend(config, "run"),
                                  records=LocalRecordStore(tmp_path / "records"))

    assert summary["failed"] == []
    sent = moto_sent_raw_messages(moto_url)
    assert len(sent) == 2
    assert sorted(m["id"] for m in sent) == sorted(s["location"].removeprefix("ses:") for s in summary["sent"])
    expected = rendered["portfolio-ceo"]
    for stored, recipient, other in ((sent[0], "finance.lead@holdings.example", "controller@holdings.example"),
                                     (sent[1], "controller@holdings.example", "finance.lead@holdings.example")):
        message = parse_mime(stored["raw_data"])
        assert message["From"] == f"Executive Reports <{SENDER}>"
        assert message["To"] == recipient
        assert message["Subject"] == expected.subject
        # The archive copy is on the envelope only: no header any recipient receives names it.
        assert ARCHIVE in stored["destinations"]
        assert message["Bcc"] is None and message["Cc"] is None
        assert ARCHIVE not in stored["raw_data"]
        # Nobody sees the other recipient's address.
        assert other not in stored["raw_data"] and other not in stored["destinations"]
        assert message.get_content_type() == "multipart/alternative"
        assert message.get_body(("plain",)).get_content().strip() == expected.text.strip()
        assert message.get_body(("html",)).get_content().strip() == expected.html.strip()
        # The CEO brief's chart travels as related parts of the HTML, each under its Content-ID.
        images = {p["Content-ID"]: p.get_content() for p in message.walk() if p.get_content_type() == "image/png"}
        assert images == {f"<{image.content_id}>": image.png for image in expected.images} and len(images) == 1
        tags = dict(pair.strip().split("=", 1) for pair in message["X-SES-MESSAGE-TAGS"].split(","))
        assert tags == {"app": "exec-reports", "tenant": "portfolio", "role": "ceo", "period": "2026-W47"}
        assert message["X-SES-CONFIGURATION-SET"] == "exec-reports"


def test_unverified_sender_fails_preflight_naming_the_identity_and_sends_nothing(
        moto_url, portfolio_copy, sample_period, tmp_path):
    config = load(write_config(portfolio_copy, ses_delivery(moto_url)))

    with pytest.raises(DeliveryError) as raised:
        run_plain(config, sample_period, backend=get_backend(config, "run"),
                  records=LocalRecordStore(tmp_path / "records"))

    message = str(raised.value)
    assert SENDER in message and "not verified" in message
    assert f"aws sesv2 create-email-identity --email-identity {SENDER}" in message
    assert "nothing was sent" in message
    assert moto_sent_raw_messages(moto_url) == []


def test_a_verified_domain_is_enough_for_any_sender_address_in_it(moto_url, portfolio_copy, sample_period,
                                                                    tmp_path):
    aws_client("ses", moto_url).verify_domain_identity(Domain="holdings.example")
    config = load(write_config(portfolio_copy, ses_delivery(moto_url)))

    summary, _ = run_plain(config, sample_period, roles=["ceo"], backend=get_backend(config, "run"),
                           records=LocalRecordStore(tmp_path / "records"))

    assert [s["recipients"] for s in summary["sent"]] == [["ceo@holdings.example"]]
    assert len(moto_sent_raw_messages(moto_url)) == 1


def test_rerun_of_the_same_period_sends_nothing_and_resend_sends_again(moto_url, portfolio_copy, sample_period,
                                                                        tmp_path):
    verify_sender(moto_url)
    config = load(write_config(portfolio_copy, ses_delivery(moto_url)))
    records = LocalRecordStore(tmp_path / "records")

    first, _ = run_plain(config, sample_period, roles=["ceo"], backend=get_backend(config, "run-1"), records=records)
    second, _ = run_plain(config, sample_period, roles=["ceo"], backend=get_backend(config, "run-2"), records=records)
    after_rerun = len(moto_sent_raw_messages(moto_url))
    third, _ = run_plain(config, sample_period, roles=["ceo"], backend=get_backend(config, "run-3"), records=records,
                         resend=True)

    assert len(first["sent"]) == 1
    assert second["sent"] == [] and second["failed"] == []
    assert [(s["report"], s["recipients"]) for s in second["skipped"]] == [("ceo", ["ceo@holdings.example"])]
    assert "already sent for 2026-W47" in second["skipped"][0]["reason"]
    assert after_rerun == 1
    assert len(third["sent"]) == 1
    assert len(moto_sent_raw_messages(moto_url)) == 2


def test_the_account_rate_from_get_send_quota_caps_a_higher_configured_rate(moto_url, portfolio_copy):
    verify_sender(moto_url)
    # moto reports MaxSendRate 1.0 for every account; the config asks for more and must not get it.
    config = load(write_config(portfolio_copy, ses_delivery(moto_url, ses={"max_send_rate": 20})))
    backend = get_backend(config, "run")

    backend.preflight()

    assert backend.limiter.max_per_second == 1.0


def test_a_lower_configured_rate_wins_over_the_account_rate(moto_url, portfolio_copy):
    verify_sender(moto_url)
    config = load(write_config(portfolio_copy, ses_delivery(moto_url, ses={"max_send_rate": 0.5})))
    backend = get_backend(config, "run")

    backend.preflight()

    assert backend.limiter.max_per_second == 0.5


def test_lost_connection_mid_run_is_retried_with_backoff_then_fails_that_message(portfolio_copy, monkeypatch):
    from moto.server import ThreadedMotoServer

    from flows.delivery.message import Email
    from flows.delivery.retry import RetryPolicy
    from flows.delivery.ses import SesBackend

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    verify_sender(url)
    config = load(write_config(portfolio_copy, ses_delivery(url)))
    waits: list[float] = []
    backend = SesBackend(config.delivery.ses, config.delivery.from_address,
                         policy=RetryPolicy(max_attempts=3, sleep=waits.append, random=lambda: 1.0))
    backend.preflight()
    server.stop()  # SES goes away between preflight and the send

    result = backend.send(Email("Weekly", "<p>x</p>", "x", config.delivery.from_address, ("ceo@holdings.example",),
                                "ceo", "portfolio", "2026-W47"))

    assert result.status == "failed"
    assert "cannot reach SES" in result.error and "after 3 attempts" in result.error
    # Full jitter drawn at its maximum: base 1 s doubled per retry -> 1 s, then 2 s.
    assert waits == [1.0, 2.0]


def test_a_sharded_run_s_shared_limit_gets_the_account_rate_at_preflight(moto_url, portfolio_copy):
    from .test_rate_limit import NotedSharedLimit

    verify_sender(moto_url)
    config = load(write_config(portfolio_copy, ses_delivery(moto_url, ses={"max_send_rate": 20})))
    backend = get_backend(config, "run")
    shared = NotedSharedLimit()

    backend.share_rate_limit(shared)
    backend.preflight()

    # moto's MaxSendRate (1/s) caps the configured 20/s, as for one process's own limiter.
    assert backend.limiter is shared and shared.rates == [1.0]
