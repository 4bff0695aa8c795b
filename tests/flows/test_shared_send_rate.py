"""A sharded run's send rate as a Prefect global concurrency limit, against a real Prefect API (the session's
test harness): created with the shape the rate gives, and granting no more than the rate in any second to
senders in several threads and in another process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from flows.send_rate import PrefectSendRate

from .delivery.test_rate_limit import busiest_window

pytestmark = pytest.mark.usefixtures("prefect_harness")


def read_limit(name: str):
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name)


def test_the_rate_creates_the_limit_and_a_changed_account_rate_updates_it():
    shared = PrefectSendRate("exec-reports-test-send-rate-shape")
    shared.use_rate(100)
    limit = read_limit(shared.name)
    assert (limit.limit, limit.slot_decay_per_second, limit.active) == (100, 0.0, True)

    PrefectSendRate(shared.name).use_rate(14)  # the next shard learns a lower account rate
    assert read_limit(shared.name).limit == 14


def test_a_message_with_more_recipients_than_slots_takes_every_permit_in_turns():
    name = "exec-reports-test-send-rate-recipients"
    shared = PrefectSendRate(name)
    shared.use_rate(2)
    grants = []
    for _ in range(3):
        shared.acquire(3)  # three recipients at 2 a second: the limit's 2 slots, then 1 more
        grants.append(time.monotonic())
    shared.close()

    # 9 permits at 2 per 1.075 s: the last message's permits cannot all be granted before 4 holds have ended.
    assert grants[-1] - grants[0] >= 3 * 1.0
    assert read_limit(name).active_slots == 0  # every slot released after its hold


def test_used_before_the_rate_is_known_it_refuses_instead_of_sending_unlimited():
    with pytest.raises(RuntimeError, match="before the backend's preflight"):
        PrefectSendRate("exec-reports-test-send-rate-unset").acquire()


def test_senders_in_threads_and_another_process_share_one_rate():
    name = "exec-reports-test-send-rate-shared"
    PrefectSendRate(name).use_rate(4)
    # Another process (as a shard on another worker would be) takes 8 grants from the same limit while this
    # one takes 16 in two threads: 24 grants at 4/s, whoever asks.
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from flows.send_rate import PrefectSendRate
        shared = PrefectSendRate({name!r})
        shared.use_rate(4)
        for _ in range(8):
            shared.acquire()
            print(time.time(), flush=True)
        shared.close()
        """)], cwd=os.getcwd(), stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": os.getcwd()})
    grants: list[tuple[float, int]] = []
    lock = threading.Lock()
    shared = PrefectSendRate(name)
    shared.use_rate(4)

    def send(count: int) -> None:
        for _ in range(count):
            shared.acquire()
            with lock:
                grants.append((time.time(), 1))

    threads = [threading.Thread(target=send, args=(8,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shared.close()
    output, _ = child.communicate(timeout=120)
    grants.extend((float(line), 1) for line in output.split())

    assert child.returncode == 0 and len(grants) == 24
    # Never above the rate in any second: without the shared limit the 24 would land within a second. How much
    # of the rate it uses is measured by bench/fanout_bench.py (bench_shared_limit), not asserted here.
    assert busiest_window(grants) <= 4
