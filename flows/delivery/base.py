"""The send pipeline every backend shares, so each provider module implements only its provider call.

``BaseBackend.send`` is: preflight (once per run; a failure is remembered and every later send fails
the same way), the MIME message built once, then per attempt the rate limiter, the provider's
connection, **the delivery claim right before the provider call**, and the call; provider errors are
classified (transient, quota, permanent) and retried by ``RetryPolicy``, releasing the claim before
each wait so that a crash while waiting leaves nothing claimed.

A provider module (outbox, ses, smtp) overrides the hooks: ``check_can_send`` (preflight),
``connection`` (what must exist before the claim: a logged-in SMTP session), ``provider_send`` (the call
that sends), ``classify_error`` (its error mapping), ``delivered`` (its answer as a ``DeliveryResult``),
and where needed ``flatten`` and ``redact``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from flows.core.errors import DeliveryError
from flows.delivery.message import DeliveryResult, Email, SendClaim
from flows.delivery.ratelimit import RateLimiter, SharedLimiter, Unlimited
from flows.delivery.retry import Failure, GaveUp, RetryPolicy

# A backend with nothing to retry or limit (the outbox): one attempt, no rate.
SINGLE_ATTEMPT = RetryPolicy(max_attempts=1, quota_attempts=1)


class BaseBackend:
    name = "base"
    # True for a provider whose preflight learns the send rate from the account (SES's MaxSendRate).
    rate_from_preflight = False

    def __init__(self, *, policy: RetryPolicy | None = None,
                 limiter: RateLimiter | SharedLimiter | Unlimited | None = None):
        self.policy = policy or SINGLE_ATTEMPT
        # None until preflight sets it, for a provider whose rate comes from the account (SES).
        self.limiter = limiter
        self._preflight_lock = threading.Lock()
        self._preflight_done = False
        self._preflight_error: Exception | None = None

    # ---- the pipeline ------------------------------------------------------------------------------

    def preflight(self) -> None:
        """Raise DeliveryError, before anything is sent, when this backend cannot send at all. Checked
        once; a failure is remembered, so every later send raises the same error and nothing goes out."""
        with self._preflight_lock:
            if self._preflight_error is not None:
                raise self._preflight_error
            if self._preflight_done:
                return
            try:
                self.check_can_send()
            except DeliveryError as exc:
                self._preflight_error = exc
                raise
            self._preflight_done = True

    def share_rate_limit(self, shared: SharedLimiter) -> None:
        """Send through ``shared`` (a limit every worker of a sharded run uses) instead of this process's own
        limiter: a configured rate moves to it now; a rate the preflight learns (SES) goes to it then. A
        backend without a rate (the outbox, an SMTP relay without ``max_send_rate``) keeps sending unlimited."""
        if isinstance(self.limiter, RateLimiter):
            shared.use_rate(self.limiter.max_per_second)
            self.limiter = shared
        elif self.limiter is None and self.rate_from_preflight:
            self.limiter = shared

    def send(self, email: Email, claim: SendClaim | None = None) -> DeliveryResult:
        self.preflight()
        message = email.to_mime()
        raw = self.flatten(message)
        recipients = email.envelope_recipients
        limiter = self.limiter or Unlimited()

        def attempt() -> Any:
            limiter.acquire(len(recipients))
            with self.connection() as connection:
                if claim is not None:
                    claim.acquire()  # right before the call that sends: the only window a crash leaves unknown
                return self.provider_send(connection, email, raw)

        release = (lambda failure: claim.release(self.redact(failure.reason))) if claim is not None else None
        try:
            answer = self.policy.call(attempt, self.classify_error, before_wait=release)
        except GaveUp as exc:
            return DeliveryResult(recipients=email.to, status="failed", error=self.redact(str(exc)))
        return self.delivered(email, message, answer)

    # ---- what a provider module implements ---------------------------------------------------------

    def check_can_send(self) -> None:
        """Preflight: raise DeliveryError (or ConfigurationError) when nothing can be sent."""

    def flatten(self, message: EmailMessage) -> bytes:
        return message.as_bytes()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """What must be ready before the claim is taken (built or opened per attempt)."""
        yield None

    def provider_send(self, connection: Any, email: Email, raw: bytes) -> Any:
        """The one call that sends ``raw``; its answer goes to ``delivered``."""
        raise NotImplementedError

    def classify_error(self, exc: BaseException) -> Failure | None:
        """transient / quota / permanent, or None for an error no rule knows (it propagates, unretried)."""
        return None

    def delivered(self, email: Email, message: EmailMessage, answer: Any) -> DeliveryResult:
        return DeliveryResult(recipients=email.to, status="sent", location=str(answer or ""))

    def redact(self, text: str) -> str:
        """Remove a secret the provider may echo (a password) from text this backend reports."""
        return text
