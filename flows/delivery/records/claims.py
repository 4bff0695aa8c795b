"""What a stored record means for a run that finds it, the claim a backend takes right before its
provider call, and ``deliver_once``: send a message unless its record says it went out (or may have)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

from flows.core.errors import DeliveryError
from flows.delivery.message import ClaimLost, DeliveryBackend, DeliveryResult, Email
from flows.delivery.records.model import (
    DEFAULT_LEASE_SECONDS,
    DeliveryKey,
    Record,
    RecordStore,
    RecordStoreError,
    RunLiveness,
    State,
    now_utc,
    timestamp_now,
)

log = logging.getLogger("exec_reports")


def claim_is_over(record: Record, run_is_over: RunLiveness | None = None, now: dt.datetime | None = None) -> bool:
    """A ``sending`` claim is over when its lease expired or its run is known to have ended."""
    if record.lease_expired(now or now_utc()):
        return True
    if run_is_over is not None:
        try:
            return run_is_over(record.run) is True
        except Exception as exc:  # a liveness check that fails must not turn a live claim into unknown
            log.warning("could not tell whether run %s is over: %s", record.run, exc)
    return False


def is_unknown(record: Record, run_is_over: RunLiveness | None = None, now: dt.datetime | None = None) -> bool:
    return record.state == "unknown" or (record.state == "sending" and claim_is_over(record, run_is_over, now))


def unknown_state_reason(record: Record) -> str:
    what = (record.reason + "; ") if record.state == "unknown" and record.reason else ""
    return (f"delivery state unknown: {what}{record.who} started sending this message at {record.updated_at} "
            f"through {record.backend} and never recorded the outcome. Not resent, to avoid a duplicate: check "
            f"the provider's sending log, then `exec-reports run --resend --only {record.key.label}` "
            f"(`exec-reports deliveries unknown --period {record.key.period}` lists every such message)")


# ---- the claim a backend takes right before its provider call -----------------------------------------


class MessageClaim:
    """The claim on one message, handed to the backend's ``send``: ``acquire()`` right before each
    provider call, ``release()`` after a failed call that will be retried. ``deliver_once`` writes the
    outcome. Every write is conditional on the version this claim last wrote."""

    def __init__(self, store: RecordStore, backend: str, key: DeliveryKey, *, run: str, run_name: str,
                 lease_seconds: float, expected_version: str | None, run_is_over: RunLiveness | None):
        self.store, self.backend, self.key = store, backend, key
        self.run, self.run_name, self.lease_seconds = run, run_name, lease_seconds
        self.version = expected_version
        self.run_is_over = run_is_over
        self.held = False  # a "sending" claim of ours is stored right now
        self.acquired = False  # at least one provider call was made under this claim

    def _record(self, state: State, **fields) -> Record:
        lease = ""
        if state == "sending":
            lease = (now_utc() + dt.timedelta(seconds=self.lease_seconds)).isoformat(timespec="milliseconds")
        return Record(self.key, state, self.backend, self.run, timestamp_now(), run_name=self.run_name,
                      lease_until=lease, **fields)

    def _write(self, record: Record) -> str | None:
        try:
            return self.store.write(record, self.version)
        except DeliveryError:
            raise
        except Exception as exc:
            raise RecordStoreError(f"delivery record store {self.store!r} failed: {type(exc).__name__}: {exc}") from exc

    def acquire(self) -> None:
        version = self._write(self._record("sending"))
        if version is None:
            latest = self.store.get(self.backend, self.key)
            raise ClaimLost(describe_holder(latest, self.run_is_over))
        self.version, self.held, self.acquired = version, True, True

    def release(self, reason: str) -> None:
        """The provider refused this attempt and another follows after a wait: nothing is in flight."""
        if not self.held:
            return
        version = self._write(self._record("failed", reason=f"attempt failed, retrying: {reason}"))
        if version is None:
            raise ClaimLost(describe_holder(self.store.get(self.backend, self.key), self.run_is_over))
        self.version, self.held = version, False

    def finish(self, state: State, *, location: str = "", reason: str = "") -> bool:
        version = self._write(self._record(state, location=location, reason=reason))
        if version is None:
            return False
        self.version, self.held = version, False
        return True


def describe_holder(record: Record | None, run_is_over: RunLiveness | None = None) -> str:
    if record is None:
        return "another run changed this message's record at the same moment; not sent twice"
    if record.state == "sent":
        return f"already sent for {record.key.period} by {record.who} at {record.updated_at}"
    if record.state == "sending" and not claim_is_over(record, run_is_over):
        return f"being sent by {record.who} (claimed at {record.updated_at}); not sent twice"
    return f"{record.who} wrote this message's record ({record.state}) at the same moment; not sent twice"


def deliver_once(backend: DeliveryBackend, email: Email, store: RecordStore, *, run: str, run_name: str = "",
                 resend: bool = False, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 run_is_over: RunLiveness | None = None) -> DeliveryResult:
    """Send ``email`` unless its delivery key is already recorded; claim it right before the provider
    call and record the outcome right after.

    ``resend`` sends again what was sent or is unknown, but never takes a live claim of another run.
    """
    key = DeliveryKey.for_email(email)
    current = store.get(backend.name, key)
    if current is not None:
        if current.state == "sent" and not resend:
            return DeliveryResult(email.to, "skipped", location=current.location,
                                  error=f"already sent for {key.period} by {current.who} at "
                                        f"{current.updated_at}; --resend sends it again")
        if current.state == "sending" and not claim_is_over(current, run_is_over):
            return DeliveryResult(email.to, "skipped", error=describe_holder(current, run_is_over))
        if is_unknown(current, run_is_over) and not resend:
            return DeliveryResult(email.to, "failed", error=unknown_state_reason(current))
    claim = MessageClaim(store, backend.name, key, run=run, run_name=run_name or run, lease_seconds=lease_seconds,
                         expected_version=current.version if current else None, run_is_over=run_is_over)
    try:
        result = backend.send(email, claim=claim)
    except ClaimLost as lost:
        return DeliveryResult(email.to, "skipped", error=str(lost))
    except Exception as exc:
        if not claim.held:
            raise  # nothing reached the provider under this claim: no record, the next run sends it
        # The provider call itself raised something no backend rule knows: it may have gone out.
        reason = f"the provider call raised {type(exc).__name__}: {exc}"
        log.error("delivery of %s: %s", key.label, reason)
        _finish_or_note(claim, "unknown", reason=reason)
        return DeliveryResult(email.to, "failed", error=unknown_state_reason(claim._record("unknown", reason=reason)))
    if not claim.acquired:
        return result  # e.g. the backend failed before any provider call: nothing to record
    state: State = "sent" if result.status == "sent" else "failed"
    note = _finish_or_note(claim, state, location=result.location, reason=result.error)
    if note:
        result = replace(result, error=f"{result.error}; {note}" if result.error else note)
    return result


def _finish_or_note(claim: MessageClaim, state: State, *, location: str = "", reason: str = "") -> str:
    try:
        if claim.finish(state, location=location, reason=reason):
            return ""
        problem = "another run replaced the record meanwhile"
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
    log.error("delivery record for %s not written (%s): %s", claim.key.label, state, problem)
    return (f"{state}, but its delivery record could not be written ({problem}); a re-run will report this "
            "message's state as unknown once the claim's lease expires")
