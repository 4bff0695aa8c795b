"""When to try a send again, and how long to wait.

Each backend sorts a provider error into one of three kinds; this module turns the kind into waits:
- ``transient`` (throttling, provider 5xx, connection trouble): exponential backoff with full
  jitter, so concurrent senders that were throttled together do not come back together;
- ``quota`` (the daily sending quota is used up): waits minutes, since the quota is a rolling
  24-hour window that frees up slowly and hammering it only delays the rest of the run;
- ``permanent`` (message rejected, identity not verified, sending paused or suspended, bad
  credentials): no retry; the message fails at once with the provider's reason.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

Kind = Literal["transient", "quota", "permanent"]
T = TypeVar("T")


@dataclass(frozen=True)
class Failure:
    """A classified provider error: what kind it is and a reason fit for the run summary."""

    kind: Kind
    reason: str


class GaveUp(Exception):
    def __init__(self, failure: Failure, attempts: int):
        self.failure, self.attempts = failure, attempts
        suffix = f" (after {attempts} attempts)" if attempts > 1 else ""
        super().__init__(failure.reason + suffix)


@dataclass
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 1.0
    max_seconds: float = 30.0
    quota_wait_seconds: float = 300.0
    quota_attempts: int = 3
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    @classmethod
    def from_settings(cls, settings, **overrides) -> RetryPolicy:
        return cls(max_attempts=settings.max_attempts, base_seconds=settings.backoff_base_seconds,
                   max_seconds=settings.backoff_max_seconds, quota_wait_seconds=settings.quota_wait_seconds,
                   quota_attempts=settings.quota_attempts, **overrides)

    def transient_delay(self, retry_number: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**n)] (retry_number counts from 0)."""
        return self.random() * min(self.max_seconds, self.base_seconds * (2 ** retry_number))

    def quota_delay(self, retry_number: int) -> float:
        # Jitter of up to a fifth on top, never below the configured wait.
        return self.quota_wait_seconds * (1 + 0.2 * self.random()) * (retry_number + 1)

    def call(self, attempt: Callable[[], T], classify: Callable[[BaseException], Failure | None],
             before_wait: Callable[[Failure], None] | None = None) -> T:
        """Run ``attempt`` until it returns, retrying what ``classify`` calls transient or quota.

        Exceptions ``classify`` does not recognise (returns None) propagate unchanged: a bug is not retried.
        ``before_wait`` runs after a failed attempt that will be retried, before the wait (the
        delivery claim is released there, so nothing stays claimed while nothing is in flight).
        """
        transient_retries = quota_retries = 0
        attempts = 0
        while True:
            attempts += 1
            try:
                return attempt()
            except Exception as exc:
                failure = classify(exc)
                if failure is None:
                    raise
                retrying = ((failure.kind == "transient" and transient_retries + 1 < self.max_attempts)
                            or (failure.kind == "quota" and quota_retries + 1 < self.quota_attempts))
                if retrying and before_wait is not None:
                    before_wait(failure)
                if failure.kind == "transient" and transient_retries + 1 < self.max_attempts:
                    self.sleep(self.transient_delay(transient_retries))
                    transient_retries += 1
                    continue
                if failure.kind == "quota" and quota_retries + 1 < self.quota_attempts:
                    self.sleep(self.quota_delay(quota_retries))
                    quota_retries += 1
                    continue
                raise GaveUp(failure, attempts) from exc
