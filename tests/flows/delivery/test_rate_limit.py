"""The shared rate limit: counted per one-second window, never by asserting how long things took."""

from __future__ import annotations

import math
import threading

import pytest

from flows.delivery.ratelimit import RateLimiter, SharedLimiter


class RecordingLimiter(RateLimiter):
    """The real limiter, noting every grant (time on its own clock, permits)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.grants: list[tuple[float, int]] = []
        self._note = threading.Lock()

    def acquire(self, permits: int = 1) -> float:
        granted = super().acquire(permits)
        with self._note:
            self.grants.append((granted, permits))
        return granted


def busiest_window(grants: list[tuple[float, int]], window: float = 1.0) -> int:
    """Most permits granted in any half-open window [t, t + window) that starts at a grant."""
    return max(sum(p for t, p in grants if start <= t < start + window) for start, _ in grants)


class VirtualClock:
    """Time that moves only when the limiter sleeps, so fractional rates are checked without waiting."""

    def __init__(self):
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_concurrent_senders_never_exceed_the_rate_in_any_second():
    limiter = RecordingLimiter(3)
    threads = [threading.Thread(target=lambda: [limiter.acquire() for _ in range(3)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(limiter.grants) == 12
    assert busiest_window(limiter.grants) <= 3
    # 12 sends at 3 per second fill windows starting at 0, 1, 2 and 3 s: the last grant is 3 s or more in.
    times = sorted(t for t, _ in limiter.grants)
    assert times[-1] - times[0] >= 3.0


def test_each_recipient_counts_against_the_rate():
    clock = VirtualClock()
    limiter = RecordingLimiter(4, clock=clock.time, sleep=clock.sleep)

    for _ in range(4):
        limiter.acquire(2)  # a report to one recipient plus its archive copy

    # Two recipients take two permits' worth of spacing: 2 / (4/s * 0.93 pacing) = 0.538 s apart,
    # so no one-second window ever holds more than the 4 recipients the rate allows.
    assert [round(t, 6) for t, _ in limiter.grants] == [0.0, 0.537634, 1.075269, 1.612903]


def test_a_rate_below_one_per_second_spaces_sends_out():
    clock = VirtualClock()
    limiter = RecordingLimiter(0.5, clock=clock.time, sleep=clock.sleep)

    for _ in range(3):
        limiter.acquire()

    assert [round(t, 6) for t, _ in limiter.grants] == [0.0, 2.150538, 4.301075]  # 1 / (0.5 * 0.93)


def test_grants_are_spread_evenly_instead_of_bursting_at_each_window_start():
    clock = VirtualClock()
    limiter = RecordingLimiter(10, clock=clock.time, sleep=clock.sleep, pacing=1.0)

    for _ in range(25):
        limiter.acquire()

    times = [t for t, _ in limiter.grants]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # 0.1 s apart; the limiter's 1 ms minimum sleep may add a millisecond where floats round badly.
    assert all(0.1 - 1e-9 <= gap <= 0.1011 for gap in gaps), gaps


def test_a_fractional_rate_rounds_down_never_up():
    clock = VirtualClock()
    limiter = RecordingLimiter(2.5, clock=clock.time, sleep=clock.sleep)

    for _ in range(5):
        limiter.acquire()

    assert busiest_window(limiter.grants) == 2


def test_smtp_sends_from_several_threads_share_one_low_rate(smtp_server, monkeypatch):
    from flows.core.config import SmtpConfig
    from flows.delivery.message import Email
    from flows.delivery.smtp import SmtpBackend

    from .test_smtp import smtp_settings

    monkeypatch.setenv("SMTP_PASSWORD", smtp_server.password)
    limiter = RecordingLimiter(2)
    backend = SmtpBackend(SmtpConfig(**smtp_settings(smtp_server)), "reports@holdings.example", limiter=limiter)
    addresses = [f"officer{n}@holdings.example" for n in range(6)]

    def send(address: str) -> None:
        backend.send(Email("Weekly", "<p>x</p>", "x", "reports@holdings.example", (address,), "ceo",
                           "portfolio", "2026-W47"))

    threads = [threading.Thread(target=send, args=(a,)) for a in addresses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == sorted(addresses)
    assert len(limiter.grants) == 6
    assert busiest_window(limiter.grants) <= 2


# ---- a limit shared by every worker of a sharded run ------------------------------------------------


def test_a_shared_window_holds_at_most_the_rate_in_slots_each_for_at_least_a_second():
    from flows.delivery.ratelimit import shared_window

    # Worked by hand: floor(rate) slots, each grant held 1/0.93 = 1.075 s; below 1/s one slot, 1/(rate * 0.93) s.
    assert shared_window(1) == (1, pytest.approx(1.0753, abs=1e-4))
    assert shared_window(14) == (14, pytest.approx(1.0753, abs=1e-4))
    assert shared_window(2.5) == (2, pytest.approx(1.0753, abs=1e-4))  # rounds down, as RateLimiter does
    assert shared_window(0.5) == (1, pytest.approx(2.1505, abs=1e-4))
    for rate in (0.5, 1, 1.5, 2.5, 14, 28.6, 500):
        slots, hold = shared_window(rate)
        # Every grant of a one-second window is still held at its end: at most `slots` of them, never above
        # the rate; at a steady pace the limit grants slots / hold a second, 93% of the rate rounded down.
        assert hold >= 1 and slots <= max(math.floor(rate), 1)
        assert slots / hold == pytest.approx(0.93 * (math.floor(rate) if rate >= 1 else rate))
    with pytest.raises(ValueError, match="positive"):
        shared_window(0)


class NotedSharedLimit(SharedLimiter):
    """The shared-limit interface with nothing behind it but a note of the rate it was given."""

    def __init__(self):
        self.rates: list[float] = []

    def use_rate(self, max_per_second: float) -> None:
        self.rates.append(max_per_second)

    def acquire(self, permits: int = 1) -> float:
        return 0.0


def test_a_backend_hands_its_rate_to_the_shared_limit_and_the_outbox_stays_unlimited(tmp_path, smtp_server):
    from flows.core.config import SmtpConfig
    from flows.delivery.outbox import OutboxBackend
    from flows.delivery.smtp import SmtpBackend

    from .test_smtp import smtp_settings

    relay = SmtpBackend(SmtpConfig(**{**smtp_settings(smtp_server), "max_send_rate": 5}), "reports@holdings.example")
    shared = NotedSharedLimit()
    relay.share_rate_limit(shared)
    assert relay.limiter is shared and shared.rates == [5]

    unlimited_relay = SmtpBackend(SmtpConfig(**smtp_settings(smtp_server)), "reports@holdings.example")
    unlimited_relay.share_rate_limit(NotedSharedLimit())
    assert not isinstance(unlimited_relay.limiter, SharedLimiter)

    outbox = OutboxBackend(tmp_path)
    outbox.share_rate_limit(NotedSharedLimit())
    assert outbox.limiter is None
