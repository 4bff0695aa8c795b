"""The shared record store in PostgreSQL: a row version makes every write a compare-and-set."""

from __future__ import annotations

import threading

from flows.delivery.records.model import DeliveryKey, Record, RecordStoreError


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
