"""Delivery records: which message went out for which period, so a re-run sends only what is missing.

Every message has a delivery key (period, tenant, role, variant, recipient). Before the provider
call, a ``sending`` marker is claimed for the key (create-if-absent, so two workers racing on the
same period cannot both send); right after the provider accepts, the record becomes ``sent`` with the
provider's message id; a definite refusal makes it ``failed``, which the next run sends again.

The crash window: if the process dies after the provider accepted a message but before ``sent`` is
written, the marker stays ``sending``. The next run cannot know whether the message went out, so it
does not resend it silently: it reports that message as failed with "delivery state unknown" and the
run that left the marker; ``--resend`` sends it after a human has checked. Delivery is therefore
at-most-once across crashes and at-least-once only where a person asks for it. The window itself is
one provider call plus one small write.

Records are namespaced by backend: an outbox preview never counts as an SES send.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from email.utils import parseaddr
from pathlib import Path
from typing import Literal, Protocol

from flows.delivery.base import DeliveryBackend, DeliveryResult, Email, slug
from flows.errors import ConfigurationError, DeliveryError, ReportError

log = logging.getLogger("exec_reports")

State = Literal["sending", "sent", "failed"]


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
    def file_name(self) -> str:
        # A digest, not the address, names the file: fixed length, no path tricks through data.
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]
        return f"{slug(self.tenant)}--{slug(self.role)}--{slug(self.variant) or 'default'}--{digest}.json"


@dataclass(frozen=True)
class Record:
    key: DeliveryKey
    state: State
    backend: str
    run: str
    updated_at: str
    location: str = ""
    reason: str = ""
    # Opaque token of the stored version this was read from (file digest or S3 ETag); not stored.
    version: str | None = None

    def to_json(self) -> bytes:
        data = asdict(self)
        data.pop("version")
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes, version: str, where: str) -> Record:
        try:
            data = json.loads(raw)
            return cls(key=DeliveryKey(**data.pop("key")), version=version, **data)
        except (ValueError, TypeError, KeyError) as exc:
            raise DeliveryError(f"delivery record {where} is unreadable ({exc}); delete it to send again") from None


class RecordStore(Protocol):
    def get(self, backend: str, key: DeliveryKey) -> Record | None: ...

    def claim(self, record: Record, expected_version: str | None) -> bool:
        """Write ``record`` only if the stored one is still ``expected_version`` (None: none stored)."""

    def put(self, record: Record) -> None: ...


def timestamp_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class LocalRecordStore:
    """One JSON file per key under ``root/<backend>/<period>/``; flock guards read-compare-write."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, backend: str, key: DeliveryKey) -> Path:
        return self.root / slug(backend) / slug(key.period) / key.file_name

    def _read(self, path: Path) -> Record | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        return Record.from_json(raw, hashlib.sha256(raw).hexdigest(), str(path))

    def get(self, backend: str, key: DeliveryKey) -> Record | None:
        return self._read(self._path(backend, key))

    def _locked_write(self, record: Record, expected_version: str | None, check: bool) -> bool:
        path = self._path(record.backend, record.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if check:
                    current = self._read(path)
                    if (current.version if current else None) != expected_version:
                        return False
                temporary = path.with_suffix(f".{os.getpid()}.tmp")
                with open(temporary, "wb") as handle:
                    handle.write(record.to_json())
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, path)
                return True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def claim(self, record: Record, expected_version: str | None) -> bool:
        return self._locked_write(record, expected_version, check=True)

    def put(self, record: Record) -> None:
        self._locked_write(record, None, check=False)

    def __repr__(self) -> str:
        return f"LocalRecordStore({self.root})"


class S3RecordStore:
    """The same layout under ``s3://bucket/prefix/``, with S3 conditional writes (If-None-Match /
    If-Match) standing in for the file lock, so workers on different machines share one truth."""

    def __init__(self, bucket: str, prefix: str = "exec-reports/deliveries", *, client=None,
                 region: str | None = None, endpoint_url: str | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client
        self._region, self._endpoint_url = region, endpoint_url

    @property
    def client(self):
        if self._client is None:
            import boto3

            self._client = boto3.client("s3", region_name=self._region, endpoint_url=self._endpoint_url)
        return self._client

    def _object_key(self, backend: str, key: DeliveryKey) -> str:
        return "/".join(part for part in (self.prefix, slug(backend), slug(key.period), key.file_name) if part)

    def get(self, backend: str, key: DeliveryKey) -> Record | None:
        object_key = self._object_key(backend, key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
        except self.client.exceptions.NoSuchKey:
            return None
        return Record.from_json(response["Body"].read(), response["ETag"], f"s3://{self.bucket}/{object_key}")

    def claim(self, record: Record, expected_version: str | None) -> bool:
        from botocore.exceptions import ClientError

        condition = {"IfNoneMatch": "*"} if expected_version is None else {"IfMatch": expected_version}
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._object_key(record.backend, record.key),
                                   Body=record.to_json(), ContentType="application/json", **condition)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (409, 412) or exc.response.get("Error", {}).get("Code") in (
                    "PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"):
                return False
            raise
        return True

    def put(self, record: Record) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._object_key(record.backend, record.key),
                               Body=record.to_json(), ContentType="application/json")

    def __repr__(self) -> str:
        return f"S3RecordStore(s3://{self.bucket}/{self.prefix})"


def open_record_store(config) -> RecordStore:
    """The store the portfolio config asks for (``delivery.records``).

    The local default sits beside the outbox folder (``<outbox_dir>/../.deliveries``): inside the
    project for ``make run``, and private to each copy of a portfolio, so separate checkouts and test
    copies never see each other's records. Deployments with several workers set ``store: s3``.
    """
    settings = config.delivery.records
    if settings.store == "s3":
        if not settings.bucket:
            raise ConfigurationError("delivery.records.bucket: set it (or EXEC_REPORTS_RECORDS_BUCKET) for store 's3'")
        return S3RecordStore(settings.bucket, settings.prefix, region=settings.region,
                             endpoint_url=settings.endpoint_url)
    return LocalRecordStore(config.resolve(settings.path) if settings.path else config.outbox_path.parent / ".deliveries")


def unknown_state_reason(record: Record) -> str:
    return (f"delivery state unknown: run {record.run} started sending this message at {record.updated_at} "
            f"through {record.backend} and never recorded the outcome (it stopped mid-send, or is still "
            "running). Not resent, to avoid a duplicate: check the provider's sending log, then re-run with "
            "--resend to send it again")


def deliver_once(backend: DeliveryBackend, email: Email, store: RecordStore, *, run: str,
                 resend: bool = False) -> DeliveryResult:
    """Send ``email`` unless its delivery key is already recorded; record the outcome right after."""
    key = DeliveryKey.for_email(email)
    current = store.get(backend.name, key)
    if current is not None and not resend:
        if current.state == "sent":
            return DeliveryResult(email.to, "skipped", location=current.location,
                                  error=f"already sent for {key.period} by run {current.run} at "
                                        f"{current.updated_at}; --resend sends it again")
        if current.state == "sending":
            return DeliveryResult(email.to, "failed", error=unknown_state_reason(current))
    marker = Record(key, "sending", backend.name, run, timestamp_now())
    if not store.claim(marker, current.version if current else None):
        latest = store.get(backend.name, key)
        holder = f"run {latest.run} ({latest.state})" if latest else "another run"
        return DeliveryResult(email.to, "skipped", error=f"claimed at the same moment by {holder}; not sent twice")
    # From here until the record below is written is the crash window described in the module docstring.
    try:
        result = backend.send(email)
    except (ReportError, ValueError, TypeError) as exc:
        # Raised before anything reached the provider (configuration, message building): nothing was
        # sent, so record a failure the next run retries instead of an unknown state that blocks it.
        store.put(replace(marker, state="failed", updated_at=timestamp_now(),
                          reason=f"not sent: {type(exc).__name__}: {exc}"))
        raise
    outcome = replace(marker, state="sent" if result.status == "sent" else "failed", updated_at=timestamp_now(),
                      location=result.location, reason=result.error)
    try:
        store.put(outcome)
    except Exception as exc:
        log.error("delivery record for %s/%s to %s not written: %s", key.tenant, key.role, key.recipient, exc)
        note = (f"{result.status}, but its delivery record could not be written ({type(exc).__name__}); "
                "a re-run will report this message's state as unknown")
        result = replace(result, error=f"{result.error}; {note}" if result.error else note)
    return result
