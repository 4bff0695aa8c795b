"""SES errors moto cannot produce (throttling, daily quota, paused sending, one rejected recipient),
answered by botocore's Stubber on a real SES client; everything else in the path is the real code."""

from __future__ import annotations

import pytest
from botocore.stub import ANY, Stubber

from flows.core.config import SesConfig
from flows.core.errors import DeliveryError
from flows.delivery.message import Email
from flows.delivery.ratelimit import RateLimiter
from flows.delivery.retry import RetryPolicy
from flows.delivery.ses import SesBackend
from flows.orchestrator.run import run_plain

from .conftest import REGION, SENDER, load, write_config

FROM = f"Executive Reports <{SENDER}>"


@pytest.fixture
def ses_client():
    import boto3

    return boto3.client("ses", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def stub_preflight(stubber: Stubber, *, enabled: bool = True, max_rate: float = 50.0) -> None:
    stubber.add_response("get_identity_verification_attributes",
                         {"VerificationAttributes": {SENDER: {"VerificationStatus": "Success"}}},
                         {"Identities": [SENDER, "holdings.example"]})
    stubber.add_response("get_account_sending_enabled", {"Enabled": enabled}, {})
    stubber.add_response("get_send_quota", {"Max24HourSend": 50000.0, "MaxSendRate": max_rate,
                                            "SentLast24Hours": 10.0}, {})


def send_params(*destinations: str) -> dict:
    # Source is the envelope sender: the bare address of the From header.
    return {"Source": SENDER, "Destinations": list(destinations), "RawMessage": {"Data": ANY}}


def email_to(address: str) -> Email:
    return Email("CFO weekly", "<p>figures</p>", "figures", FROM, (address,), "cfo", "portfolio", "2026-W47")


def backend_with(client, waits: list[float]) -> SesBackend:
    # random() = 0.5 puts every jittered wait at half its ceiling, so the expected waits can be worked by hand.
    return SesBackend(SesConfig(region=REGION), FROM, client=client,
                      policy=RetryPolicy(sleep=waits.append, random=lambda: 0.5))


def test_throttling_is_retried_with_exponential_backoff_and_jitter(ses_client):
    waits: list[float] = []
    with Stubber(ses_client) as stubber:
        stub_preflight(stubber)
        for _ in range(2):
            stubber.add_client_error("send_raw_email", "Throttling", "Maximum sending rate exceeded.", 400,
                                     expected_params=send_params("cfo@holdings.example"))
        stubber.add_response("send_raw_email", {"MessageId": "m-1"}, send_params("cfo@holdings.example"))

        result = backend_with(ses_client, waits).send(email_to("cfo@holdings.example"))

        stubber.assert_no_pending_responses()
    assert (result.status, result.location) == ("sent", "ses:m-1")
    # Ceilings min(30, 1 * 2**n) = 1 s then 2 s, halved by the jitter draw.
    assert waits == [0.5, 1.0]


def test_provider_5xx_is_retried(ses_client):
    waits: list[float] = []
    with Stubber(ses_client) as stubber:
        stub_preflight(stubber)
        stubber.add_client_error("send_raw_email", "ServiceUnavailable", "Service is unavailable", 503)
        stubber.add_response("send_raw_email", {"MessageId": "m-2"}, send_params("cfo@holdings.example"))

        result = backend_with(ses_client, waits).send(email_to("cfo@holdings.example"))

    assert result.status == "sent"
    assert waits == [0.5]


def test_daily_quota_backs_off_for_minutes_not_seconds(ses_client):
    waits: list[float] = []
    with Stubber(ses_client) as stubber:
        stub_preflight(stubber)
        stubber.add_client_error("send_raw_email", "Throttling", "Daily message quota exceeded.", 400)
        stubber.add_response("send_raw_email", {"MessageId": "m-3"}, send_params("cfo@holdings.example"))

        result = backend_with(ses_client, waits).send(email_to("cfo@holdings.example"))

    assert result.status == "sent"
    # 300 s configured wait plus a fifth of it times the 0.5 draw: 300 * 1.1.
    assert waits == [pytest.approx(330.0)]


def test_daily_quota_still_exceeded_fails_the_message_after_the_quota_attempts(ses_client):
    waits: list[float] = []
    with Stubber(ses_client) as stubber:
        stub_preflight(stubber)
        for _ in range(3):
            stubber.add_client_error("send_raw_email", "Throttling", "Daily message quota exceeded.", 400)

        result = backend_with(ses_client, waits).send(email_to("cfo@holdings.example"))

        stubber.assert_no_pending_responses()
    assert result.status == "failed"
    assert "Daily message quota exceeded" in result.error and "after 3 attempts" in result.error
    # Growing waits: 330 s, then twice that.
    assert waits == [pytest.approx(330.0), pytest.approx(660.0)]


@pytest.mark.parametrize("code", ["AccountSendingPausedException", "ConfigurationSetSendingPausedException",
                                  "MessageRejected", "MailFromDomainNotVerifiedException"])
def test_paused_sending_and_rejections_fail_the_message_at_once_with_the_reason(ses_client, code):
    waits: list[float] = []
    with Stubber(ses_client) as stubber:
        stub_preflight(stubber)
        stubber.add_client_error("send_raw_email", code, f"{code} happened", 400)

        result = backend_with(ses_client, waits).send(email_to("cfo@holdings.example"))

        stubber.assert_no_pending_responses()
    assert result.status == "failed"
    assert code in result.error and "after" not in result.error
    assert waits == []


def test_paused_account_fails_preflight_and_sends_nothing(ses_client):
    with Stubber(ses_client) as stubber:
        stub_preflight(stubber, enabled=False)
        backend = backend_with(ses_client, [])

        with pytest.raises(DeliveryError, match="paused") as raised:
            backend.send(email_to("cfo@holdings.example"))
        # No send_raw_email was stubbed: had one been attempted, Stubber would have raised instead.
        stubber.assert_no_pending_responses()
    assert "nothing was sent" in str(raised.value)


def test_one_rejected_recipient_fails_alone_and_the_others_are_delivered(ses_client, portfolio_copy,
                                                                         sample_period, tmp_path):
    recipients = ["cfo@holdings.example", "blocked@holdings.example", "controller@holdings.example"]
    config = load(write_config(portfolio_copy, {"backend": "ses", "from_address": FROM}, {"cfo": recipients}))
    waits: list[float] = []
    with Stubber(ses_client) as stubber:
        stub_preflight(stubber)
        stubber.add_response("send_raw_email", {"MessageId": "m-a"}, send_params(recipients[0]))
        stubber.add_client_error("send_raw_email", "MessageRejected", "Email address is on the suppression list",
                                 400, expected_params=send_params(recipients[1]))
        stubber.add_response("send_raw_email", {"MessageId": "m-c"}, send_params(recipients[2]))
        backend = SesBackend(config.delivery.ses, FROM, client=ses_client, limiter=RateLimiter(50),
                             policy=RetryPolicy(sleep=waits.append, random=lambda: 0.5))

        summary, _ = run_plain(config, sample_period, roles=["cfo"], backend=backend)

        stubber.assert_no_pending_responses()
    assert [s["recipients"] for s in summary["sent"]] == [[recipients[0]], [recipients[2]]]
    assert [(f["recipients"], f["reason"]) for f in summary["failed"]] == [
        ([recipients[1]], "SES MessageRejected: Email address is on the suppression list")]
    assert waits == []


def test_a_read_timeout_after_sending_is_not_retried_so_nothing_goes_out_twice():
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    from flows.delivery.ses import classify_ses_error

    timed_out = classify_ses_error(ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"))
    assert timed_out.kind == "permanent" and "may have been delivered" in timed_out.reason
    # Failing to connect at all is safe to retry: nothing reached SES.
    assert classify_ses_error(EndpointConnectionError(endpoint_url="https://x.example")).kind == "transient"


def test_the_claim_is_taken_after_the_rate_limit_wait_and_released_during_a_retry_backoff(ses_client, tmp_path):
    """A crash while a message waits for its turn or for a retry must leave nothing unknown: the record
    says ``sending`` only while a provider call is in flight."""
    from flows.delivery.records import DeliveryKey, LocalRecordStore, deliver_once

    store = LocalRecordStore(tmp_path / "records")
    message = email_to("cfo@holdings.example")
    key = DeliveryKey.for_email(message)
    seen: list[str] = []

    def state() -> str:
        record = store.get("ses", key)
        return record.state if record else "none"

    class WatchingLimiter(RateLimiter):
        def acquire(self, permits: int = 1) -> float:
            seen.append(f"limiter wait: {state()}")
            return super().acquire(permits)

    def backoff(seconds: float) -> None:
        seen.append(f"backoff: {state()}")

    backend = SesBackend(SesConfig(region=REGION), FROM, client=ses_client, limiter=WatchingLimiter(50),
                         policy=RetryPolicy(sleep=backoff, random=lambda: 0.5))
    with Stubber(ses_client) as stubber:
        stub_preflight(stubber)
        stubber.add_client_error("send_raw_email", "Throttling", "Maximum sending rate exceeded.", 400,
                                 expected_params=send_params("cfo@holdings.example"))
        stubber.add_response("send_raw_email", {"MessageId": "m-1"}, send_params("cfo@holdings.example"))

        result = deliver_once(backend, message, store, run="run-1")

    assert result.status == "sent"
    # Nothing claimed while waiting for the limiter; the throttled attempt's claim released before the wait.
    assert seen == ["limiter wait: none", "backoff: failed", "limiter wait: failed"]
    record = store.get("ses", key)
    assert (record.state, record.location, record.lease_until) == ("sent", "ses:m-1", "")
