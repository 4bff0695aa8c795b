"""Amazon SES: the outbox's exact MIME message, sent raw (SendRawEmail), one recipient per message.

Message tags and the configuration set travel in the X-SES-* headers ``Email.to_mime`` writes, so
the outbox shows them too. botocore's own retries are off: ``RetryPolicy`` decides, because it must
tell a daily-quota error (wait minutes) from a rate throttle (wait seconds) and both go through the
shared rate limiter on every attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from flows.core.addresses import Mailbox
from flows.core.config import SesConfig
from flows.core.errors import ConfigurationError, DeliveryError
from flows.core.secrets import boto3_session
from flows.delivery.base import BaseBackend
from flows.delivery.message import DeliveryResult, Email
from flows.delivery.ratelimit import RateLimiter, SharedLimiter
from flows.delivery.retry import Failure, RetryPolicy

log = logging.getLogger("exec_reports")

_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
_SERVER_TROUBLE = {"ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalError",
                   "InternalServiceError", "InternalServiceErrorException", "RequestTimeout",
                   "RequestTimeoutException"}
_QUOTA = {"LimitExceededException", "DailyQuotaExceeded"}
_PAUSED = {"AccountSendingPausedException", "ConfigurationSetSendingPausedException", "SendingPausedException",
           "AccountSuspendedException"}


def classify_ses_error(exc: BaseException) -> Failure | None:
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        HTTPClientError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        message = error.get("Message", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        reason = f"SES {code}: {message}" if message else f"SES {code}"
        if "daily message quota" in message.lower() or code in _QUOTA:
            return Failure("quota", reason)
        if code in _THROTTLED or code in _SERVER_TROUBLE or status >= 500:
            return Failure("transient", reason)
        if code in _PAUSED:
            return Failure("permanent", f"{reason} (sending is paused for this account or configuration set; "
                                        "see the SES console's reputation page)")
        return Failure("permanent", reason)
    if isinstance(exc, ReadTimeoutError):
        # The request went out and no answer came back: SES may have accepted it. Retrying could
        # send it twice, so this message fails with that said, and a person decides on a re-run.
        return Failure("permanent", "SES did not answer after the message was sent (read timeout); it may "
                                    "have been delivered, so it was not retried")
    if isinstance(exc, ConnectionError | HTTPClientError):
        return Failure("transient", f"cannot reach SES: {type(exc).__name__}: {exc}")
    if isinstance(exc, NoCredentialsError):
        return Failure("permanent", "no AWS credentials found (boto3 chain) and no delivery.ses.credentials_block")
    return None


class SesBackend(BaseBackend):
    name = "ses"
    rate_from_preflight = True

    def __init__(self, settings: SesConfig, from_address: str, *, client=None, policy: RetryPolicy | None = None,
                 limiter: RateLimiter | SharedLimiter | None = None):
        super().__init__(policy=policy or RetryPolicy.from_settings(settings), limiter=limiter)
        self.settings = settings
        self.from_address = from_address
        self._client = client

    @property
    def region(self) -> str:
        region = self.settings.region or (self._client.meta.region_name if self._client else None)
        if not region:
            import boto3

            region = boto3.Session().region_name
        if not region:
            raise ConfigurationError("SES needs a region: set SES_REGION or delivery.ses.region")
        return region

    @property
    def client(self):
        if self._client is None:
            from botocore.config import Config

            session = boto3_session(self.settings.credentials_block)
            self._client = session.client(
                "ses", region_name=self.region, endpoint_url=self.settings.endpoint_url,
                config=Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=30))
        return self._client

    # ---- preflight ---------------------------------------------------------------------------------

    def check_can_send(self) -> None:
        """Check once per run that the sender is verified and the account can send; else raise and send nothing."""
        address = Mailbox(self.from_address).address
        domain = address.rsplit("@", 1)[-1]
        region = self.region
        try:
            attributes = self.client.get_identity_verification_attributes(
                Identities=[address, domain])["VerificationAttributes"]
            if self.settings.check_account_enabled:
                enabled = self.client.get_account_sending_enabled().get("Enabled", True)
            else:
                enabled = True
            quota = self.client.get_send_quota()
        except Exception as exc:  # whatever it is, the run must stop here with one readable error
            failure = classify_ses_error(exc)
            reason = failure.reason if failure else f"{type(exc).__name__}: {exc}"
            raise DeliveryError(f"SES preflight in {region} failed, nothing was sent: {reason}") from None

        statuses = {identity: attributes.get(identity, {}).get("VerificationStatus", "not found")
                    for identity in (address, domain)}
        if "Success" not in statuses.values():
            raise DeliveryError(
                f"SES sender identity {address} is not verified in {region} (address: {statuses[address]}, "
                f"domain {domain}: {statuses[domain]}); nothing was sent. Verify it with "
                f"`aws sesv2 create-email-identity --email-identity {address} --region {region}` and click "
                f"the link AWS emails to it, or verify the domain {domain} with its DKIM DNS records; "
                f"or set SES_FROM_ADDRESS / delivery.from_address to an identity that is verified.")
        if not enabled:
            raise DeliveryError(
                f"SES sending is paused for this AWS account in {region} (GetAccountSendingEnabled is false); "
                "nothing was sent. See the SES console's reputation page; resume with "
                "`aws ses update-account-sending-enabled --enabled` once the cause is fixed.")
        max_per_day = float(quota.get("Max24HourSend", -1))
        sent_today = float(quota.get("SentLast24Hours", 0))
        if max_per_day >= 0 and sent_today >= max_per_day:
            raise DeliveryError(
                f"SES daily sending quota in {region} is used up ({sent_today:.0f} of {max_per_day:.0f} in the "
                "last 24 hours); nothing was sent. Re-run later or ask AWS for a higher quota.")
        account_rate = float(quota.get("MaxSendRate") or 0) or None
        rates = [r for r in (account_rate, self.settings.max_send_rate) if r]
        rate = min(rates) if rates else 1.0
        if isinstance(self.limiter, SharedLimiter):  # a sharded run: every worker sends through one limit
            self.limiter.use_rate(rate)
        elif self.limiter is None:
            self.limiter = RateLimiter(rate)
        log.info("SES preflight ok: %s verified in %s, sending at most %s recipient(s)/s",
                 address, region, self.limiter.max_per_second)

    # ---- send --------------------------------------------------------------------------------------

    @contextmanager
    def connection(self) -> Iterator[Any]:
        yield self.client  # built before the claim: building it is not a provider call

    def provider_send(self, client: Any, email: Email, raw: bytes) -> dict:
        return client.send_raw_email(Source=email.envelope_sender, Destinations=list(email.envelope_recipients),
                                     RawMessage={"Data": raw})

    def classify_error(self, exc: BaseException) -> Failure | None:
        return classify_ses_error(exc)

    def delivered(self, email: Email, message: EmailMessage, answer: dict) -> DeliveryResult:
        return DeliveryResult(recipients=email.to, status="sent", location=f"ses:{answer['MessageId']}")
