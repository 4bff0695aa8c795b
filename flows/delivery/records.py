"""Delivery records: which message went out for which period, so a re-run sends only what is missing.

Every message has a delivery key (period, tenant, role, variant, recipient). The guarantee rests on
three rules:

- **A claim is made right before the provider call**, not before the rate-limiter wait or a retry
  backoff: the backend calls ``MessageClaim.acquire`` immediately before SES's ``SendRawEmail`` or
  SMTP's ``DATA``. The claim is a conditional write (create-if-absent, or replace-if-unchanged), so
  two runs can never both hold it. Right after the provider answers, the record becomes ``sent``
  (with the provider's message id) or ``failed``; a failed attempt that will be retried releases
  the claim before the backoff, so a crash during the wait leaves nothing unknown.
- **A claim belongs to a run and has a lease** (``lease_until``, longer than any single provider
  call can take). Another run that finds a live claim skips the message as "being sent by run X";
  it never reports it failed, and never sends it.
- **Only a claim whose run is over without a result is "unknown"**: its lease has expired, or the
  orchestrator says its run ended (Crashed, Failed, Completed). Such a message may or may not have
  reached the provider, so no run resends it by itself: it fails with "delivery state unknown" until
  an operator checks and resends exactly it (``exec-reports deliveries unknown``, then
  ``run --resend --only report/tenant/recipient``). A crash therefore leaves at most as many unknown
  messages as there were provider calls in flight; everything else the crashed run did not send is
  sent by the next run.

Records are namespaced by backend: an outbox preview never counts as an SES send. Three stores share
one interface: a local SQLite database (one machine), PostgreSQL and S3 (several workers).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from email.utils import parseaddr
from pathlib import Path
from typing import Literal, Protocol

from flows.delivery.base import ClaimLost, DeliveryBackend, DeliveryResult, Email, slug
from flows.errors import ConfigurationError, DeliveryError

log = logging.getLogger("exec_reports")

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


class LocalRecordStore:
    """One SQLite database, ``root/records.sqlite3``, in WAL mode: one row per (backend, period, key)
    with a row version, so every write is one conditional statement, as in the PostgreSQL store
    (``INSERT .. ON CONFLICT DO NOTHING`` to create, ``UPDATE .. WHERE version = v`` to replace).

    Why SQLite and not a file per key: a record costs tens of microseconds instead of a lock file, a
    temporary file, an fsync and a rename (~5 ms each). Crash safety: a committed write is in the WAL
    file before the statement returns, so a killed process (SIGKILL, OOM) loses nothing it wrote.
    Against a power loss, a *claim* of a backend whose provider call leaves the machine (SES, SMTP,
    task webhooks) is also fsynced before the call (``synchronous=FULL`` for that statement, which
    flushes everything written before it too); outcomes and outbox records are not (``NORMAL``): a lost
    outcome leaves a claim, which a re-run reports as unknown, never sends twice. The outbox writes its
    own message file without an fsync, so syncing its record would buy nothing.

    Several processes and threads of one machine share the database; SQLite's own locking serialises
    writers (``busy_timeout``). Not for a network file system (WAL needs shared memory on one host):
    several machines use the PostgreSQL or S3 store. Records in the earlier layout (one JSON file per key under
    ``root/<backend>/<period>/``) are imported once, the first time a store opens the folder."""

    DATABASE = "records.sqlite3"
    TABLE = "deliveries"
    IMPORTED_MARKER = ".json-records-imported"
    # Backends whose records need no fsync even for a claim: the "provider" is a local file.
    LOCAL_ONLY_BACKENDS = frozenset({"outbox"})
    BUSY_TIMEOUT_MS = 60_000

    def __init__(self, root: Path):
        self.root = Path(root)
        self._connection = None
        self._pid = None
        self._lock = threading.Lock()
        self._synchronous = ""

    def __getstate__(self):  # a task argument: pickled copies open their own connection
        return {"root": self.root}

    def __setstate__(self, state):
        self.__init__(state["root"])

    def _connect(self):
        import sqlite3

        self.root.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, each statement is its own transaction (the conditional write).
        connection = sqlite3.connect(self.root / self.DATABASE, timeout=self.BUSY_TIMEOUT_MS / 1000,
                                     isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {self.BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        self._synchronous = "NORMAL"
        connection.execute(f"""
            CREATE TABLE IF NOT EXISTS {self.TABLE} (
                backend TEXT NOT NULL,
                period TEXT NOT NULL,
                key_digest TEXT NOT NULL,
                record TEXT NOT NULL,
                version INTEGER NOT NULL,
                PRIMARY KEY (backend, period, key_digest)) WITHOUT ROWID""")
        self._import_json_records(connection)
        return connection

    def _import_json_records(self, connection) -> None:
        """Records written by the file-per-key layout: imported once, never overwriting a newer row."""
        marker = self.root / self.IMPORTED_MARKER
        if marker.exists():
            return
        rows = []
        for path in sorted(self.root.glob("*/*/*.json")):
            record = Record.from_json(path.read_bytes(), "", str(path))
            rows.append((record.backend, record.key.period, record.key.digest, record.to_json().decode()))
        if rows:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(f"INSERT INTO {self.TABLE} VALUES (?, ?, ?, ?, 1) ON CONFLICT DO NOTHING", rows)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            log.info("delivery records: imported %d JSON record(s) from %s into %s", len(rows), self.root,
                     self.DATABASE)
        marker.touch()

    def _execute(self, sql: str, parameters: tuple, synchronous: str = "NORMAL") -> list:
        with self._lock:
            if self._connection is None or self._pid != os.getpid():  # a forked child opens its own
                self._connection, self._pid = self._connect(), os.getpid()
            if synchronous != self._synchronous:
                self._connection.execute(f"PRAGMA synchronous = {synchronous}")
                self._synchronous = synchronous
            return self._connection.execute(sql, parameters).fetchall()

    def get(self, backend: str, key: DeliveryKey) -> Record | None:
        rows = self._execute(f"SELECT record, version FROM {self.TABLE} WHERE backend = ? AND period = ? "
                             "AND key_digest = ?", (backend, key.period, key.digest))
        return Record.from_json(rows[0][0], str(rows[0][1]), f"{self!r}/{key.digest}") if rows else None

    def write(self, record: Record, expected_version: str | None) -> str | None:
        body = record.to_json().decode()
        key = record.key
        durable = record.state == "sending" and record.backend not in self.LOCAL_ONLY_BACKENDS
        synchronous = "FULL" if durable else "NORMAL"
        if expected_version is None:
            rows = self._execute(
                f"INSERT INTO {self.TABLE} (backend, period, key_digest, record, version) VALUES (?, ?, ?, ?, 1) "
                "ON CONFLICT DO NOTHING RETURNING version", (record.backend, key.period, key.digest, body),
                synchronous)
        else:
            try:
                expected = int(expected_version)
            except ValueError:
                return None  # a version from another store or layout: never the stored one
            rows = self._execute(
                f"UPDATE {self.TABLE} SET record = ?, version = version + 1 WHERE backend = ? AND period = ? "
                "AND key_digest = ? AND version = ? RETURNING version",
                (body, record.backend, key.period, key.digest, expected), synchronous)
        return str(rows[0][0]) if rows else None

    def list(self, backend: str, period: str) -> list[Record]:
        rows = self._execute(f"SELECT record, version FROM {self.TABLE} WHERE backend = ? AND period = ? "
                             "ORDER BY key_digest", (backend, period))
        return [Record.from_json(body, str(version), f"{self!r}") for body, version in rows]

    def __repr__(self) -> str:
        return f"LocalRecordStore({self.root})"


class S3RecordStore:
    """The same layout under ``s3://bucket/prefix/``. Every write is conditional (``If-None-Match: *``
    to create, ``If-Match: <ETag>`` to replace), so workers on different machines share one truth and
    a late write can never overwrite a newer record."""

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

    def _folder(self, backend: str, period: str) -> str:
        return "/".join(part for part in (self.prefix, slug(backend), slug(period)) if part)

    def _object_key(self, backend: str, key: DeliveryKey) -> str:
        return f"{self._folder(backend, key.period)}/{key.file_name}"

    def _get_object(self, object_key: str) -> Record | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
        except self.client.exceptions.NoSuchKey:
            return None
        return Record.from_json(response["Body"].read(), response["ETag"], f"s3://{self.bucket}/{object_key}")

    def get(self, backend: str, key: DeliveryKey) -> Record | None:
        return self._get_object(self._object_key(backend, key))

    def write(self, record: Record, expected_version: str | None) -> str | None:
        from botocore.exceptions import ClientError

        condition = {"IfNoneMatch": "*"} if expected_version is None else {"IfMatch": expected_version}
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=self._object_key(record.backend, record.key),
                                              Body=record.to_json(), ContentType="application/json", **condition)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (409, 412) or exc.response.get("Error", {}).get("Code") in (
                    "PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"):
                return None
            raise
        return response["ETag"]

    def list(self, backend: str, period: str) -> list[Record]:
        records = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._folder(backend, period) + "/"):
            for item in page.get("Contents", []):
                record = self._get_object(item["Key"])
                if record is not None and record.key.period == period:
                    records.append(record)
        return records

    def __repr__(self) -> str:
        return f"S3RecordStore(s3://{self.bucket}/{self.prefix})"


class PostgresRecordStore:
    """One row per (backend, period, key) in a PostgreSQL table; a row version makes every write a
    compare-and-set (``INSERT .. ON CONFLICT DO NOTHING`` to create, ``UPDATE .. WHERE version = v`` to
    replace), each a single atomic statement. Use the database a production Prefect server already has.

    The connection string comes from the environment (it may hold a password) and is never logged:
    the store's repr names only host and database."""

    TABLE = "exec_reports_deliveries"

    def __init__(self, dsn: str):
        self._dsn = dsn
        self._connection = None
        self._lock = threading.Lock()

    def __getstate__(self):  # never pickle a live connection (or keep the DSN out of a pickled copy's repr)
        return {"_dsn": self._dsn}

    def __setstate__(self, state):
        self.__init__(state["_dsn"])

    def _connect(self):
        import psycopg

        try:
            connection = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise RecordStoreError(f"cannot connect to the PostgreSQL record store {self!r}: "
                                   f"{type(exc).__name__}") from None
        with connection.transaction():
            # Two workers starting at once would race on CREATE TABLE IF NOT EXISTS (pg_type's unique
            # index); an advisory lock serialises that first statement.
            connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.TABLE,))
            connection.execute(f"""
                CREATE TABLE IF NOT EXISTS {self.TABLE} (
                    backend text NOT NULL,
                    period text NOT NULL,
                    key_digest text NOT NULL,
                    record jsonb NOT NULL,
                    version bigint NOT NULL,
                    updated_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (backend, period, key_digest))""")
        return connection

    def _execute(self, sql: str, parameters: tuple):
        import psycopg

        with self._lock:
            for attempt in (1, 2):
                if self._connection is None or self._connection.closed:
                    self._connection = self._connect()
                try:
                    return self._connection.execute(sql, parameters).fetchall()
                except psycopg.OperationalError:
                    # A dropped connection: reconnect once. Each statement is atomic, so a statement
                    # whose answer was lost is at worst re-evaluated against the same condition.
                    self._connection = None
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, backend: str, key: DeliveryKey) -> Record | None:
        rows = self._execute(f"SELECT record, version FROM {self.TABLE} WHERE backend = %s AND period = %s "
                             "AND key_digest = %s", (backend, key.period, key.digest))
        return Record.from_json(rows[0][0], str(rows[0][1]), f"{self!r}/{key.digest}") if rows else None

    def write(self, record: Record, expected_version: str | None) -> str | None:
        body = record.to_json().decode()
        key = record.key
        if expected_version is None:
            rows = self._execute(
                f"INSERT INTO {self.TABLE} (backend, period, key_digest, record, version) VALUES (%s, %s, %s, %s, 1) "
                "ON CONFLICT DO NOTHING RETURNING version", (record.backend, key.period, key.digest, body))
        else:
            rows = self._execute(
                f"UPDATE {self.TABLE} SET record = %s, version = version + 1, updated_at = now() WHERE backend = %s "
                "AND period = %s AND key_digest = %s AND version = %s RETURNING version",
                (body, record.backend, key.period, key.digest, int(expected_version)))
        return str(rows[0][0]) if rows else None

    def list(self, backend: str, period: str) -> list[Record]:
        rows = self._execute(f"SELECT record, version FROM {self.TABLE} WHERE backend = %s AND period = %s "
                             "ORDER BY key_digest", (backend, period))
        return [Record.from_json(body, str(version), f"{self!r}") for body, version in rows]

    def __repr__(self) -> str:
        try:
            from psycopg.conninfo import conninfo_to_dict

            info = conninfo_to_dict(self._dsn)
            return f"PostgresRecordStore({info.get('host', 'localhost')}/{info.get('dbname', '')})"
        except Exception:
            return "PostgresRecordStore(<unparsable dsn>)"


def open_record_store(config) -> RecordStore:
    """The store the portfolio config asks for (``delivery.records``).

    The local default sits beside the outbox folder (``<outbox_dir>/../.deliveries``): inside the
    project for ``make run``, and private to each copy of a portfolio, so separate checkouts and test
    copies never see each other's records. Deployments with several workers set ``store: postgres``
    or ``store: s3``.
    """
    settings = config.delivery.records
    if settings.store == "s3":
        if not settings.bucket:
            raise ConfigurationError("delivery.records.bucket: set it (or EXEC_REPORTS_RECORDS_BUCKET) for store 's3'")
        return S3RecordStore(settings.bucket, settings.prefix, region=settings.region,
                             endpoint_url=settings.endpoint_url)
    if settings.store == "postgres":
        dsn = os.environ.get(settings.dsn_env)
        if not dsn:
            raise ConfigurationError(f"delivery.records.store is 'postgres': set {settings.dsn_env} to the "
                                     "database's connection string (postgresql://user@host/db)")
        return PostgresRecordStore(dsn)
    return LocalRecordStore(config.resolve(settings.path) if settings.path else config.outbox_path.parent / ".deliveries")


# ---- what a stored record means for a run that finds it -----------------------------------------------


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
