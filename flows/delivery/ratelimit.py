"""A send-rate limit shared by every thread of a run.

SES counts MaxSendRate in recipients per second, so each send asks for as many permits as it has
envelope recipients. A sliding one-second window (rather than a token bucket with a burst) keeps the
guarantee simple to state and to check: in any window of ``window`` seconds at most ``capacity``
recipients are handed to the provider.

Grants are also spread evenly, at most one permit every ``1 / (rate * pacing)`` seconds. SES counts
requests when they arrive, and requests granted as a burst at the start of each window arrive
bunched with the tail of the previous one (network and thread scheduling jitter), which can put more
than the rate into one second at the provider (measured: 60 in one second at 50/s). Even spacing
with 7% headroom kept arrivals under the rate (49 at most) while using over 90% of it (bench/).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, max_per_second: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, pacing: float = 0.93):
        if max_per_second <= 0:
            raise ValueError(f"max_per_second must be positive, got {max_per_second}")
        self.max_per_second = max_per_second
        # Fractional rates round down (never above the limit); below 1/s the window stretches instead.
        self.capacity = max(1, math.floor(max_per_second))
        self.window = self.capacity / max_per_second if max_per_second < 1 else 1.0
        self._clock = clock
        self._sleep = sleep
        self._granted: deque[tuple[float, int]] = deque()
        self._in_window = 0
        self._interval = 1.0 / (max_per_second * pacing)
        self._next_allowed = -math.inf
        self._lock = threading.Lock()

    def acquire(self, permits: int = 1) -> float:
        """Block until ``permits`` fit in the window; returns the grant time (the limiter's clock)."""
        # One message with more recipients than the window holds still goes, alone in its window.
        permits = max(1, permits)
        needed = min(permits, self.capacity)
        while True:
            with self._lock:
                now = self._clock()
                while self._granted and self._granted[0][0] <= now - self.window:
                    self._in_window -= self._granted.popleft()[1]
                if now < self._next_allowed:
                    wait = self._next_allowed - now
                elif self._in_window + needed <= self.capacity:
                    self._granted.append((now, permits))
                    self._in_window += permits
                    self._next_allowed = now + self._interval * permits
                    return now
                else:
                    wait = self._granted[0][0] + self.window - now
            self._sleep(max(wait, 0.001))


class Unlimited:
    """Stands in where no rate is known or configured (the outbox, an SMTP relay without a limit)."""

    max_per_second = math.inf

    def acquire(self, permits: int = 1) -> float:
        return time.monotonic()
