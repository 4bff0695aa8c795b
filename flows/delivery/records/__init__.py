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

import os

from flows.core.errors import ConfigurationError
from flows.delivery.records.claims import (
    MessageClaim,
    claim_is_over,
    deliver_once,
    describe_holder,
    is_unknown,
    unknown_state_reason,
)
from flows.delivery.records.local import LocalRecordStore
from flows.delivery.records.model import (
    DEFAULT_LEASE_SECONDS,
    DeliveryKey,
    Feedback,
    Record,
    RecordStore,
    RecordStoreError,
    RunLiveness,
    State,
    now_utc,
    timestamp_now,
)
from flows.delivery.records.postgres import PostgresRecordStore
from flows.delivery.records.s3 import S3RecordStore

__all__ = ["DEFAULT_LEASE_SECONDS", "DeliveryKey", "Feedback", "LocalRecordStore", "MessageClaim",
           "PostgresRecordStore", "Record", "RecordStore", "RecordStoreError", "RunLiveness", "S3RecordStore",
           "State", "claim_is_over", "deliver_once", "describe_holder", "is_unknown", "now_utc",
           "open_record_store", "timestamp_now", "unknown_state_reason"]


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
