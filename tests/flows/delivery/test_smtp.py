"""SMTP against aiosmtpd on 127.0.0.1 with STARTTLS (a certificate made in the test) and AUTH."""

from __future__ import annotations

import json
import logging

import pytest

from flows.core.config import SmtpConfig
from flows.core.errors import ConfigurationError, DeliveryError, ReportError
from flows.delivery import get_backend
from flows.delivery.message import Email
from flows.delivery.records import LocalRecordStore
from flows.delivery.retry import RetryPolicy
from flows.delivery.smtp import SmtpBackend
from flows.orchestrator.run import run_plain

from .conftest import REGION, aws_client, load, parse_mime, write_config

FROM = "Executive Reports <reports@holdings.example>"
ARCHIVE = "archive@holdings.example"


def smtp_settings(server, **extra) -> dict:
    return {"host": server.host, "port": server.port, "username": server.username, "ca_file": server.ca_file,
            "timeout_seconds": 10, **extra}


@pytest.fixture(autouse=True)
def _no_ambient_smtp_settings(monkeypatch):
    for variable in ("SMTP_HOST", "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_PASSWORD_SECRET_ID"):
        monkeypatch.delenv(variable, raising=False)


def test_same_mime_goes_over_starttls_with_auth_to_each_recipient_and_the_archive(
        smtp_server, monkeypatch, portfolio_copy, sample_period, tmp_path):
    monkeypatch.setenv("SMTP_PASSWORD", smtp_server.password)
    config = load(write_config(portfolio_copy, {"backend": "smtp", "from_address": FROM, "bcc_address": ARCHIVE,
                                                "smtp": smtp_settings(smtp_server)},
                               {"ceo": ["finance.lead@holdings.example", "controller@holdings.example"]}))

    summary, rendered = run_plain(config, sample_period, roles=["ceo"], backend=get_backend(config, "run"),
                                  records=LocalRecordStore(tmp_path / "records"))

    assert summary["failed"] == []
    assert [r.rcpt_tos for r in smtp_server.received] == [["finance.lead@holdings.example", ARCHIVE],
                                                           ["controller@holdings.example", ARCHIVE]]
    expected = rendered["portfolio-ceo"]
    for received in smtp_server.received:
        assert received.over_tls and received.authenticated
        assert received.mail_from == "reports@holdings.example"
        message = parse_mime(received.content)
        assert message["From"] == FROM
        assert message["To"] == received.rcpt_tos[0]
        assert message["Subject"] == expected.subject
        assert message["Bcc"] is None and ARCHIVE.encode() not in received.content
        # SMTP carries lines as CRLF; the content is otherwise byte for byte what was rendered.
        assert message.get_body(("plain",)).get_content().replace("\r\n", "\n").strip() == expected.text.strip()
        assert message.get_body(("html",)).get_content().replace("\r\n", "\n").strip() == expected.html.strip()
        images = {p["Content-ID"] for p in message.walk() if p.get_content_type() == "image/png"}
        assert images == {f"<{image.content_id}>" for image in expected.images} and images
    assert [s["location"].startswith("smtp:<") for s in summary["sent"]] == [True, True]


def test_rerun_sends_nothing_and_resend_sends_again(smtp_server, monkeypatch, portfolio_copy, sample_period,
                                                    tmp_path):
    monkeypatch.setenv("SMTP_PASSWORD", smtp_server.password)
    config = load(write_config(portfolio_copy, {"backend": "smtp", "smtp": smtp_settings(smtp_server)}))
    records = LocalRecordStore(tmp_path / "records")

    run_plain(config, sample_period, roles=["ceo"], backend=get_backend(config, "1"), records=records)
    rerun, _ = run_plain(config, sample_period, roles=["ceo"], backend=get_backend(config, "2"), records=records)
    count_after_rerun = len(smtp_server.received)
    run_plain(config, sample_period, roles=["ceo"], backend=get_backend(config, "3"), records=records, resend=True)

    assert count_after_rerun == 1 and len(rerun["skipped"]) == 1
    assert len(smtp_server.received) == 2


def test_a_wrong_password_fails_preflight_once_without_revealing_any_password(
        smtp_server, monkeypatch, portfolio_copy, sample_period, caplog):
    wrong = "not-the-" + smtp_server.password
    monkeypatch.setenv("SMTP_PASSWORD", wrong)
    config = load(write_config(portfolio_copy, {"backend": "smtp", "smtp": smtp_settings(smtp_server)}))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(DeliveryError) as raised:
        run_plain(config, sample_period, backend=get_backend(config, "run"))

    message = str(raised.value)
    assert "authentication failed" in message and smtp_server.username in message
    assert "nothing was sent" in message
    # One preflight connection: smtplib offers PLAIN, then LOGIN, and stops; no message is attempted.
    assert smtp_server.received == [] and smtp_server.login_attempts == 2
    for text in (message, caplog.text, repr(raised.value.__cause__)):
        assert wrong not in text and smtp_server.password not in text


def test_no_secret_value_reaches_logs_outbox_records_or_the_summary(smtp_server, monkeypatch, portfolio_copy,
                                                                   sample_period, tmp_path, caplog):
    monkeypatch.setenv("SMTP_PASSWORD", smtp_server.password)
    config = load(write_config(portfolio_copy, {"backend": "smtp", "smtp": smtp_settings(smtp_server)}))
    caplog.set_level(logging.DEBUG)
    backend = get_backend(config, "run")

    summary, rendered = run_plain(config, sample_period, backend=backend, records=LocalRecordStore(tmp_path / "rec"))

    assert summary["sent"]
    secret = smtp_server.password
    assert secret not in caplog.text
    assert secret not in json.dumps(summary, default=str)
    assert secret not in repr(backend.__dict__) and secret not in repr(config)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    for received in smtp_server.received:
        assert secret.encode() not in received.content


def test_password_can_come_from_aws_secrets_manager(smtp_server, moto_url, portfolio_copy, sample_period):
    aws_client("secretsmanager", moto_url).create_secret(Name="exec-reports/smtp", SecretString=smtp_server.password)
    settings = smtp_settings(smtp_server, password_secret_id="exec-reports/smtp", secrets_region=REGION,
                             secrets_endpoint_url=moto_url)
    config = load(write_config(portfolio_copy, {"backend": "smtp", "smtp": settings}))

    summary, _ = run_plain(config, sample_period, roles=["ceo"], backend=get_backend(config, "run"))

    assert len(summary["sent"]) == 1 and smtp_server.received[0].authenticated


def test_a_password_in_the_config_file_is_refused_without_echoing_it(portfolio_copy):
    path = write_config(portfolio_copy, {"backend": "smtp", "smtp": {"host": "smtp.example",
                                                                     "password": "hunter2-in-a-file"}})

    with pytest.raises(ConfigurationError) as raised:
        load(path)

    assert "delivery.smtp" in str(raised.value) and "never goes in the config file" in str(raised.value)
    assert "hunter2-in-a-file" not in str(raised.value)


def test_the_password_is_never_sent_to_a_remote_host_without_starttls(monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "whatever-it-is")
    backend = SmtpBackend(SmtpConfig(host="smtp.example", port=25, starttls=False, username="relay"), FROM)

    with pytest.raises(ReportError, match="without STARTTLS"):
        backend.preflight()


def test_a_temporary_4xx_reply_is_retried_and_a_5xx_reply_fails_at_once(smtp_server, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", smtp_server.password)
    waits: list[float] = []
    backend = SmtpBackend(SmtpConfig(**smtp_settings(smtp_server)), FROM,
                          policy=RetryPolicy(sleep=waits.append, random=lambda: 0.5))
    message = Email("Weekly", "<p>x</p>", "x", FROM, ("ceo@holdings.example",), "ceo", "portfolio", "2026-W47")

    smtp_server.data_replies = ["451 4.3.0 Try again later"]
    retried = backend.send(message)
    smtp_server.data_replies = ["550 5.7.1 Message rejected"]
    rejected = backend.send(message)

    assert retried.status == "sent" and waits == [0.5]
    assert rejected.status == "failed" and "550 5.7.1 Message rejected" in rejected.error
    assert waits == [0.5]  # no wait was added for the 5xx
    assert len(smtp_server.received) == 1


def test_an_untrusted_certificate_fails_preflight_instead_of_sending(smtp_server, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", smtp_server.password)
    # The system's CAs, which do not include the test's self-signed certificate.
    backend = SmtpBackend(SmtpConfig(**smtp_settings(smtp_server, ca_file=None)), FROM)

    with pytest.raises(DeliveryError, match="TLS"):
        backend.preflight()
    assert smtp_server.login_attempts == 0


def test_a_secret_never_shows_its_value_in_repr_str_or_a_pickle():
    import pickle

    from flows.core.secrets import Secret

    secret = Secret("correct-horse-battery")

    assert "correct-horse-battery" not in repr(secret) + str(secret) + f"{secret}"
    assert b"correct-horse-battery" not in pickle.dumps(secret)
    assert secret.redact("535 bad password correct-horse-battery") == "535 bad password ***"


def test_the_ses_smtp_daily_quota_reply_waits_minutes_before_the_retry(smtp_server, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", smtp_server.password)
    waits: list[float] = []
    backend = SmtpBackend(SmtpConfig(**smtp_settings(smtp_server)), FROM,
                          policy=RetryPolicy(sleep=waits.append, random=lambda: 0.5))
    # The reply the SES SMTP interface gives once the 24-hour quota is used up.
    smtp_server.data_replies = ["454 4.7.0 Throttling failure: Daily message quota exceeded."]

    result = backend.send(Email("Weekly", "<p>x</p>", "x", FROM, ("ceo@holdings.example",), "ceo", "portfolio",
                                "2026-W47"))

    assert result.status == "sent"
    assert waits == [pytest.approx(330.0)]  # 300 s plus a fifth of it times the 0.5 draw


def test_body_lines_starting_with_from_arrive_unchanged_and_long_lines_are_encoded(smtp_server, monkeypatch):
    # smtplib.send_message would quote "From " lines as ">From " and send bare LF line ends.
    monkeypatch.setenv("SMTP_PASSWORD", smtp_server.password)
    backend = SmtpBackend(SmtpConfig(**smtp_settings(smtp_server)), FROM)
    text = "Revenue against target\nFrom July through March.\n" + "x" * 2000 + "\n"
    email = Email(subject="s", html="<p>From July</p>", text=text, from_address=FROM,
                  to=("cfo@holdings.example",), role="cfo", tenant="portfolio", period="2026-W47")
    assert backend.send(email).status == "sent"
    [received] = smtp_server.received
    assert b"\n>From" not in received.content
    message = parse_mime(received.content)
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == text
    assert b"\n" not in received.content.replace(b"\r\n", b"")  # every line ends in CRLF


def test_the_envelope_is_exactly_the_address_the_header_shows(smtp_server, monkeypatch):
    """Issue 15: a display name can no longer steer RCPT TO away from the To header."""
    monkeypatch.setenv("SMTP_PASSWORD", smtp_server.password)
    backend = SmtpBackend(SmtpConfig(**smtp_settings(smtp_server)), FROM)
    email = Email("GM brief 2026-W47", "<p>figures</p>", "figures", FROM, ('"Doe, Jane (GM)" <gm@jada.example>',),
                  "gm", "jada", "2026-W47", bcc=(ARCHIVE,))

    result = backend.send(email)

    assert result.status == "sent", result.error
    [received] = smtp_server.received
    message = parse_mime(received.content)
    assert [address.addr_spec for address in message["To"].addresses] == ["gm@jada.example"]
    assert [address.display_name for address in message["To"].addresses] == ["Doe, Jane (GM)"]
    assert received.rcpt_tos == ["gm@jada.example", ARCHIVE]
    assert received.mail_from == message["From"].addresses[0].addr_spec == "reports@holdings.example"
    assert "Bcc" not in message


@pytest.mark.parametrize("hostile", ["victim@evil.example, GM <gm@queenofsandiego.example>",
                                     "Bcc: victim@evil.example <gm@quickdumpnow.example>"])
def test_a_recipient_hiding_another_never_reaches_the_smtp_server(smtp_server, monkeypatch, portfolio_copy, hostile):
    monkeypatch.setenv("SMTP_PASSWORD", smtp_server.password)
    path = write_config(portfolio_copy, {"backend": "smtp", "from_address": FROM, "smtp": smtp_settings(smtp_server)},
                        {"gm": [hostile]})
    with pytest.raises(ConfigurationError, match=r"recipients.gm\[0\]"):
        load(path)
    assert smtp_server.received == [] and smtp_server.login_attempts == 0
