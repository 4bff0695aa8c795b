"""The one-machine record store: SQLite in WAL mode, one conditional statement per write."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from flows.delivery.records.model import DeliveryKey, Record

log = logging.getLogger("exec_reports")


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

    def _use_wal(self, connection) -> None:
        """Switch the file to WAL once. Two processes opening a new file at the same instant can both try
        the switch, and SQLite answers the loser "database is locked" at once, without waiting out the busy
        timeout (seen with two runs of one period started together): try again for the busy timeout."""
        import sqlite3
        import time

        deadline = time.monotonic() + self.BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    connection.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _connect(self):
        import sqlite3

        self.root.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, each statement is its own transaction (the conditional write).
        connection = sqlite3.connect(self.root / self.DATABASE, timeout=self.BUSY_TIMEOUT_MS / 1000,
                                     isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {self.BUSY_TIMEOUT_MS}")
        self._use_wal(connection)
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
