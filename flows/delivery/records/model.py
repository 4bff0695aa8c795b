"""The delivery record: which message (``DeliveryKey``) is in which state for which run, and the
interface every record store offers (a conditional write is the whole trick)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.utils import parseaddr
from typing import Literal, Protocol

from flows.core.errors import DeliveryError
from flows.delivery.message import Email, slug

State = Literal["sending", "sent", "failed", "unknown", "cleared"]  # cleared: a lifted suppression
# What SES said happened to a sent message, per recipient (flows.delivery.feedback): recipient ->
# {"outcome": delivered|bounced|complained|rejected, "permanent": bool, "detail": str, "at": str}.
Feedback = dict[str, dict[str, object]]

# Longer than any one provider call can take (SES: 10 s connect + 30 s read; SMTP: its timeout per
# step), so a live run's claim never expires while its call is in flight.
DEFAULT_LEASE_SECONDS = 300.0

# Answers "is the run with this id over?": True (it ended), False (it is running), None (cannot tell).
RunLiveness = Callable[[str], "bool | None"]


class RecordStoreError(DeliveryError):
    """The record store could not be read or written: nothing is sent without a record."""


@dataclass(frozen=True)
class DeliveryKey:
    period: str
    tenant: str
    role: str
    variant: str
    recipient: str  # bare lower-case address; sorted and comma-joined for a grouped message

    @classmethod
    def for_email(cls, email: Email) -> DeliveryKey:
        recipients = sorted(parseaddr(address)[1].lower() for address in email.to)
        return cls(email.period, email.tenant, email.role, email.variant, ",".join(recipients))

    @property
    def digest(self) -> str:
        # A digest, not the address, names the record: fixed length, no path tricks through data.
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]

    @property
    def file_name(self) -> str:
        return f"{slug(self.tenant)}--{slug(self.role)}--{slug(self.variant) or 'default'}--{self.digest}.json"

    @property
    def label(self) -> str:
        """``cfo/portfolio/cfo@holdings.example``: what ``--only`` selects and what operators read."""
        report = f"{self.role}:{self.variant}" if self.variant else self.role
        return f"{report}/{self.tenant}/{self.recipient}"


@dataclass(frozen=True)
class Record:
    key: DeliveryKey
    state: State
    backend: str
    run: str  # the run's id (the Prefect flow run id in the flow)
    updated_at: str
    location: str = ""
    reason: str = ""
    run_name: str = ""  # a readable name for the run (its outbox folder / flow run name)
    lease_until: str = ""  # a "sending" claim is live until then, at the latest
    feedback: Feedback = field(default_factory=dict)  # from SES after the send: delivered, bounced, ...
    # Opaque token of the stored version this was read from (file digest, S3 ETag, row version); not stored.
    version: str | None = None

    def to_json(self) -> bytes:
        data = asdict(self)
        data.pop("version")
        return (json.dumps(data, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes | str | dict, version: str, where: str) -> Record:
        try:
            data = dict(raw) if isinstance(raw, dict) else json.loads(raw)
            return cls(key=DeliveryKey(**data.pop("key")), version=version, **data)
        except (ValueError, TypeError, KeyError) as exc:
            raise DeliveryError(f"delivery record {where} is unreadable ({exc}); delete it to send again") from None

    @property
    def who(self) -> str:
        return f"run {self.run_name} ({self.run})" if self.run_name and self.run_name != self.run else f"run {self.run}"

    def lease_expired(self, now: dt.datetime) -> bool:
        if not self.lease_until:
            return True  # a marker from before leases existed: nobody holds it any more
        return dt.datetime.fromisoformat(self.lease_until) <= now


class RecordStore(Protocol):
    def get(self, backend: str, key: DeliveryKey) -> Record | None: ...

    def write(self, record: Record, expected_version: str | None) -> str | None:
        """Store ``record`` only if the stored one is still ``expected_version`` (None: none stored).
        Returns the new version, or None when the condition failed (someone else wrote first)."""

    def list(self, backend: str, period: str) -> list[Record]: ...


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def timestamp_now() -> str:
    return now_utc().isoformat(timespec="milliseconds")
