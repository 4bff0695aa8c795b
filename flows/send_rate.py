"""A sharded run's send rate shared by every worker: ``PrefectSendRate``, the Prefect global concurrency limit
every process of the run takes its sends' slots from, and ``shared_send_rate``, which puts a run's delivery
backend on it (see ``flows.delivery.ratelimit.SharedLimiter`` and ``shared_window``)."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from prefect.client.orchestration import get_client
from prefect.events import emit_event

from flows.delivery.ratelimit import SharedLimiter, shared_window
from flows.orchestrator.run import Delivery

__all__ = ["PrefectSendRate", "shared_send_rate"]


class PrefectSendRate(SharedLimiter):
    """A sharded run's send rate as one Prefect global concurrency limit that every shard (on any worker, on
    any machine that reaches the Prefect API) takes a slot of before each send: the sum of their sends stays
    under the account's rate, where each process's own limiter would let N workers send N times it.

    The limit has ``slots`` slots and each grant keeps its slot for ``hold`` seconds from the grant
    (``shared_window``), released by a background thread; slots are taken with a lease, so those of a process
    that dies come back when the lease runs out. (A rate limit with slot decay was tried first: the server
    restarts the decay clock on every refused request, and senders got 43% of the rate.) The backend's
    preflight sets the rate (``use_rate``): the limit is created, or updated when the account's rate changed.
    An operator who sets the limit inactive (``prefect gcl disable``) turns the shared limit off."""

    LEASE_SECONDS = 60  # the server's shortest; a slot outlives its hold only when its process died
    MAX_RETRY_WAIT = 0.2  # ask again at least this often while the limit is full

    def __init__(self, name: str) -> None:
        self.name = name
        self.max_per_second = 0.0
        self.slots, self.hold = 0, 1.0
        self._client = None
        self._lock = threading.Lock()
        self._due: list[tuple[float, str]] = []  # (monotonic release time, lease id), a heap
        self._wake = threading.Condition(self._lock)
        self._releaser: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"release {name}")

    def use_rate(self, max_per_second: float) -> None:
        from prefect.exceptions import ObjectAlreadyExists

        slots, hold = shared_window(max_per_second)
        client = self._api()
        try:
            client.upsert_global_concurrency_limit_by_name(self.name, slots, 0.0)
        except ObjectAlreadyExists:  # another shard created it between the read and the create
            client.upsert_global_concurrency_limit_by_name(self.name, slots, 0.0)
        self.max_per_second, self.slots, self.hold = max_per_second, slots, hold

    def acquire(self, permits: int = 1) -> float:
        """Block until ``permits`` slots are granted (more than the limit holds: in turns of at most
        ``slots``, each held its own ``hold``); returns when the last was granted (this process's clock)."""
        if not self.slots:
            raise RuntimeError(f"the shared send rate {self.name!r} was used before the backend's preflight set it")
        remaining = max(1, permits)
        while remaining:
            take = min(remaining, self.slots)
            lease_id = self._take(take)
            granted = time.monotonic()
            self._release_at(granted + self.hold, lease_id)
            remaining -= take
            # Seen in Prefect's event feed: which runs took the account's rate, and when.
            emit_event(event="exec-reports.send-rate.granted", resource={"prefect.resource.id": f"exec-reports.{self.name}"},
                       payload={"slots": take, "hold_seconds": self.hold})
        return granted

    def _api(self):
        if self._client is None:
            self._client = get_client(sync_client=True)
            self._client.__enter__()  # kept open for the process's sends; closed with the process
        return self._client

    def _take(self, slots: int) -> str:
        import httpx

        while True:
            try:
                answer = self._api().increment_concurrency_slots_with_lease(
                    [self.name], slots, mode="concurrency", lease_duration=self.LEASE_SECONDS).json()
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 423:  # 423 Locked: every slot is held
                    raise
                time.sleep(min(float(exc.response.headers.get("Retry-After") or 0.1), self.MAX_RETRY_WAIT))
                continue
            if not answer.get("limits"):  # a deleted limit must fail the send, not let it go unlimited
                raise RuntimeError(f"the shared send rate {self.name!r} does not exist (deleted while sending?)")
            return answer["lease_id"]

    def _release_at(self, due: float, lease_id: str) -> None:
        with self._lock:
            heapq.heappush(self._due, (due, lease_id))
            if self._releaser is None or not self._releaser.is_alive():
                self._releaser = threading.Thread(target=self._release_due, name=f"release {self.name}", daemon=True)
                self._releaser.start()
            self._wake.notify()

    def _release_due(self) -> None:
        while True:
            with self._lock:
                if not self._due:
                    if not self._wake.wait(timeout=60) and not self._due:
                        self._releaser = None  # idle for a minute: the next grant starts a new releaser
                        return
                    continue
                wait = self._due[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(timeout=wait)
                    continue
                _, lease_id = heapq.heappop(self._due)
            # Released on a few threads: one API call at a time falls behind a high rate, and a late release
            # holds its slot longer (never shorter), which only slows sending down.
            try:
                self._pool.submit(self._release, lease_id)
            except RuntimeError:  # close() shut the pool down meanwhile: release it here
                self._release(lease_id)

    def _release(self, lease_id: str) -> None:
        try:
            self._api().release_concurrency_slots_with_lease(lease_id)
        except Exception as exc:  # the lease runs out on its own; sending is only slower meanwhile
            logging.getLogger("exec_reports").warning("shared send rate %s: slot not released (%s: %s); it "
                                                      "returns when its lease ends", self.name, type(exc).__name__, exc)

    def close(self) -> None:
        """Release every slot still held, each when its hold ends (never earlier): called when the process's
        sends are over, so a shard that ends does not keep slots the others wait for until its leases run out."""
        with self._lock:
            pending, self._due = sorted(self._due), []
        for due, lease_id in pending:
            time.sleep(max(0.0, due - time.monotonic()))
            self._release(lease_id)
        self._pool.shutdown(wait=True)  # the releases already handed to it


@contextmanager
def shared_send_rate(delivery: Delivery) -> Iterator[None]:
    """Within it, every process of a sharded run (the parent and each shard) sends through one Prefect limit
    per backend, ``exec-reports-<backend>-send-rate``, instead of its own limiter (see PrefectSendRate); on
    leaving, the slots still held are released as their holds end."""
    shared = None
    if delivery.backend is not None:
        shared = PrefectSendRate(f"exec-reports-{delivery.backend.name}-send-rate")
        delivery.backend.share_rate_limit(shared)
    try:
        yield
    finally:
        if shared is not None:
            shared.close()
