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

# The share of a rate the limiters use, leaving the rest as headroom for jitter (see the module's docstring).
PACING = 0.93


class RateLimiter:
    def __init__(self, max_per_second: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, pacing: float = PACING):
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


class SharedLimiter:
    """A send-rate limit that several processes share: a sharded run's shards, each on its own worker,
    send through one account whose MaxSendRate counts all of them. The backend's preflight learns the
    rate (SES: the account's MaxSendRate, lowered by ``max_send_rate``) and hands it to ``use_rate``;
    ``acquire`` then blocks until the shared limit grants the permits. The Prefect implementation is
    ``flows.send_rate.PrefectSendRate`` (a Prefect global concurrency limit, see ``shared_window``)."""

    max_per_second: float = math.inf

    def use_rate(self, max_per_second: float) -> None:
        raise NotImplementedError

    def acquire(self, permits: int = 1) -> float:
        raise NotImplementedError


def shared_window(max_per_second: float) -> tuple[int, float]:
    """The slots of a shared concurrency limit and how long each grant holds its slot, so that no one-second
    window ever holds more than ``max_per_second`` grants (rounded down, as RateLimiter rounds).

    Every grant holds a slot for ``hold`` >= 1 second from the moment it was granted, and at most ``slots``
    are held at once: all the grants of any one-second window are still held at its end, so there are at
    most ``slots`` of them. Releasing late (a slow API call, a dead process whose lease expires) only
    slows sending down; nothing can release early. The hold is 1/PACING seconds, the same headroom as
    RateLimiter's spacing, for grants that reach the provider with different delays: the sustained rate is
    93% of the limit. Below 1/s one slot is held 1/(rate * PACING) seconds."""
    if max_per_second <= 0:
        raise ValueError(f"max_per_second must be positive, got {max_per_second}")
    if max_per_second < 1:
        return 1, 1 / (max_per_second * PACING)
    return math.floor(max_per_second), 1 / PACING


class Unlimited:
    """Stands in where no rate is known or configured (the outbox, an SMTP relay without a limit)."""

    max_per_second = math.inf

    def acquire(self, permits: int = 1) -> float:
        return time.monotonic()
