"""Delivery feedback from SES: what happened to a message after SES accepted it.

SES publishes Delivery, Bounce, Complaint and Reject events for messages sent with a configuration
set whose event destination is an SNS topic (deploy/cloudformation/ses-feedback.yaml); SNS delivers
them to the handler directly or through SQS. This module turns one SNS notification into per-recipient
``FeedbackEvent``s. Matching them to delivery records and the suppression policy live in
``flows.delivery.records`` and the handler; nothing here does I/O.

Both SES formats are read: event publishing (``eventType``, what configuration sets send) and the
older identity notifications (``notificationType``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

log = logging.getLogger("exec_reports.feedback")

Outcome = Literal["delivered", "bounced", "complained", "rejected"]

_KINDS: dict[str, Outcome] = {"delivery": "delivered", "bounce": "bounced", "complaint": "complained",
                              "reject": "rejected"}


class NotFeedback(ValueError):
    """The message is not an SES feedback notification (or not a kind this module reads)."""


@dataclass(frozen=True)
class FeedbackEvent:
    message_id: str  # the SES message id SendRawEmail returned (the delivery record's location)
    recipient: str  # bare lower-case address
    outcome: Outcome
    permanent: bool  # a permanent bounce, a complaint or a reject: the address should not be mailed again
    detail: str  # bounce type and diagnostic, complaint type, reject reason: for operators
    timestamp: str
    tags: dict[str, str]  # the message's SES tags (period, tenant, role, variant)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def is_ses_feedback(body: Any) -> bool:
    """Cheap test used to route an SQS record or a Lambda event: an SNS envelope or a bare SES event."""
    try:
        _ses_event(body)
    except NotFeedback:
        return False
    return True


def _ses_event(body: Any) -> Mapping[str, Any]:
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body)
        except ValueError:
            raise NotFeedback("not JSON") from None
    if not isinstance(body, Mapping):
        raise NotFeedback("not a JSON object")
    if body.get("Type") == "Notification" and "Message" in body:  # the SNS envelope
        return _ses_event(body["Message"])
    if "Records" in body and isinstance(body["Records"], list) and body["Records"] \
            and isinstance(body["Records"][0], Mapping) and "Sns" in body["Records"][0]:
        raise NotFeedback("an SNS-to-Lambda batch: pass each record's Sns object")
    kind = body.get("eventType") or body.get("notificationType")
    if not isinstance(kind, str) or kind.lower() not in _KINDS or not isinstance(body.get("mail"), Mapping):
        raise NotFeedback("not an SES Delivery, Bounce, Complaint or Reject event")
    return body


def _bare(address: Any) -> str:
    from email.utils import parseaddr

    return parseaddr(str(address))[1].strip().lower()


def _tags(mail: Mapping[str, Any]) -> dict[str, str]:
    tags = mail.get("tags") or {}
    if not isinstance(tags, Mapping):
        return {}
    return {str(name): str(values[0]) if isinstance(values, list) and values else str(values)
            for name, values in tags.items()}


def parse_feedback(body: Any) -> list[FeedbackEvent]:
    """Per-recipient events of one SES notification (SNS envelope, its Message, or the bare event).

    Raises NotFeedback for anything else, and ValueError naming the field for a malformed SES event."""
    event = _ses_event(body)
    kind = str(event.get("eventType") or event.get("notificationType")).lower()
    outcome = _KINDS[kind]
    mail = event["mail"]
    message_id = mail.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise ValueError("SES event without mail.messageId")
    tags = _tags(mail)
    destination = [_bare(address) for address in mail.get("destination") or []]
    events: list[FeedbackEvent] = []

    def add(recipient: str, permanent: bool, detail: str, timestamp: Any) -> None:
        if recipient:
            events.append(FeedbackEvent(message_id, recipient, outcome, permanent, detail,
                                        str(timestamp or mail.get("timestamp") or ""), tags))

    if outcome == "delivered":
        delivery = event.get("delivery") or {}
        for address in delivery.get("recipients") or destination:
            add(_bare(address), False, str(delivery.get("smtpResponse", "")), delivery.get("timestamp"))
    elif outcome == "bounced":
        bounce = event.get("bounce") or {}
        permanent = str(bounce.get("bounceType", "")).lower() == "permanent"
        kind_text = " / ".join(str(part) for part in (bounce.get("bounceType"), bounce.get("bounceSubType")) if part)
        for entry in bounce.get("bouncedRecipients") or []:
            if not isinstance(entry, Mapping):
                continue
            diagnostic = entry.get("diagnosticCode") or entry.get("status") or ""
            add(_bare(entry.get("emailAddress")), permanent,
                f"{kind_text} bounce" + (f": {diagnostic}" if diagnostic else ""), bounce.get("timestamp"))
    elif outcome == "complained":
        complaint = event.get("complaint") or {}
        kind_text = complaint.get("complaintFeedbackType") or "complaint"
        for entry in complaint.get("complainedRecipients") or []:
            if isinstance(entry, Mapping):
                add(_bare(entry.get("emailAddress")), True, f"marked as spam ({kind_text})",
                    complaint.get("timestamp"))
    else:  # rejected: SES refused the whole message (it found a virus): about the message, not the address
        reason = (event.get("reject") or {}).get("reason", "")
        for address in destination:
            add(address, False, f"rejected by SES: {reason}" if reason else "rejected by SES", None)
    return events


# ---- applying feedback: delivery records and the suppression list --------------------------------------

FEEDBACK_BACKEND = "ses"  # feedback is about SES sends: it updates the records of that backend
SUPPRESSION_NAMESPACE = "suppression-list"  # the list lives in the record store, beside the delivery records
SUPPRESSION_PERIOD = "all"


@dataclass
class FeedbackResult:
    matched: list[str]  # "report/tenant/recipient: outcome" per event applied to a delivery record
    unmatched: list[str]  # message ids with no delivery record (not ours, or not recorded yet)
    suppressed: list[str]  # addresses newly suppressed

    @property
    def ok(self) -> bool:
        return not self.unmatched


def _find_record(store, message_id: str, period: str):
    for record in store.list(FEEDBACK_BACKEND, period):
        if record.location.removeprefix("ses:") == message_id:  # SES records keep "ses:<message id>"
            return record
    return None


def apply_feedback(store, events: list[FeedbackEvent], *, suppress: bool = True, attempts: int = 5) -> FeedbackResult:
    """Record each event on its delivery record (matched by the SES message id, within the period its
    tags name) and, with ``suppress``, put permanently bounced or complaining addresses on the
    suppression list. Writes are conditional: a record changed meanwhile is read again and merged."""
    from dataclasses import replace

    result = FeedbackResult([], [], [])
    suppressions = SuppressionList(store)
    for event in events:
        period = event.tags.get("period", "")
        entry = {"outcome": event.outcome, "permanent": event.permanent, "detail": event.detail,
                 "at": event.timestamp}
        for _ in range(attempts):
            record = _find_record(store, event.message_id, period) if period else None
            if record is None:
                result.unmatched.append(event.message_id)
                break
            if record.feedback.get(event.recipient) == entry:
                result.matched.append(f"{record.key.label}: {event.outcome} (already recorded)")
                break
            updated = replace(record, feedback={**record.feedback, event.recipient: entry})
            if store.write(updated, record.version) is not None:
                result.matched.append(f"{record.key.label}: {event.outcome}")
                break
        else:
            result.unmatched.append(event.message_id)
        if suppress and event.permanent and event.outcome in ("bounced", "complained"):
            if suppressions.suppress(event.recipient, event.detail, event.message_id, event.timestamp):
                result.suppressed.append(event.recipient)
    return result


class SuppressionList:
    """Addresses that bounced permanently or complained: no report is sent to them until an operator
    clears them (``exec-reports suppression clear ADDRESS``). Kept in the delivery-record store under its
    own namespace, so every worker and the feedback handler share it on S3 or PostgreSQL. An entry is a
    Record whose state is ``failed`` while active and ``cleared`` once lifted; ``run`` is the run that
    first reported it ("" until a run has)."""

    def __init__(self, store):
        self.store = store

    @staticmethod
    def _key(address: str):
        from flows.delivery.records import DeliveryKey

        return DeliveryKey(SUPPRESSION_PERIOD, "*", "suppressed", "", address.strip().lower())

    def entry(self, address: str):
        record = self.store.get(SUPPRESSION_NAMESPACE, self._key(address))
        return record if record is not None and record.state == "failed" else None

    def suppress(self, address: str, why: str, message_id: str, when: str) -> bool:
        """True when the address was not suppressed before."""
        from flows.delivery.records import Record, timestamp_now

        key = self._key(address)
        current = self.store.get(SUPPRESSION_NAMESPACE, key)
        if current is not None and current.state == "failed":
            return False
        record = Record(key, "failed", SUPPRESSION_NAMESPACE, run="", updated_at=when or timestamp_now(),
                        location=message_id, reason=why)
        return self.store.write(record, current.version if current else None) is not None

    def clear(self, address: str, by: str) -> bool:
        from dataclasses import replace

        from flows.delivery.records import timestamp_now

        current = self.store.get(SUPPRESSION_NAMESPACE, self._key(address))
        if current is None or current.state != "failed":
            return False
        cleared = replace(current, state="cleared", updated_at=timestamp_now(), reason=f"{current.reason}; cleared by {by}")
        return self.store.write(cleared, current.version) is not None

    def active(self) -> list:
        return [record for record in self.store.list(SUPPRESSION_NAMESPACE, SUPPRESSION_PERIOD)
                if record.state == "failed"]

    def take_unreported(self, run_name: str) -> list:
        """Active entries no run has reported yet, marked as reported by ``run_name`` (each is reported once)."""
        from dataclasses import replace

        taken = []
        for record in self.active():
            if not record.run and self.store.write(replace(record, run=run_name), record.version) is not None:
                taken.append(record)
        return taken


def report_new_suppressions(store, run_name: str) -> list[dict[str, str]]:
    """Suppressions no run has reported yet, for this run's summary and operations notice (each once)."""
    return [{"address": record.key.recipient, "why": record.reason, "since": record.updated_at,
             "message_id": record.location} for record in SuppressionList(store).take_unreported(run_name)]


def feedback_store_from_env(environ: Mapping[str, str]):
    """The delivery-record store the workers write, named by environment variables, for the feedback
    handler (a Lambda function has no portfolio config): EXEC_REPORTS_RECORDS (s3, postgres or local) and
    EXEC_REPORTS_RECORDS_BUCKET / _PREFIX / _REGION / _ENDPOINT_URL, EXEC_REPORTS_RECORDS_DSN or
    EXEC_REPORTS_RECORDS_PATH. They must name the same store as the config's ``delivery.records``."""
    from flows.core.errors import ConfigurationError
    from flows.delivery.records import LocalRecordStore, PostgresRecordStore, S3RecordStore

    kind = environ.get("EXEC_REPORTS_RECORDS", "local")
    if kind == "s3":
        bucket = environ.get("EXEC_REPORTS_RECORDS_BUCKET")
        if not bucket:
            raise ConfigurationError("EXEC_REPORTS_RECORDS_BUCKET: set it to the delivery records' bucket")
        return S3RecordStore(bucket, environ.get("EXEC_REPORTS_RECORDS_PREFIX", "exec-reports/deliveries"),
                             region=environ.get("EXEC_REPORTS_RECORDS_REGION") or None,
                             endpoint_url=environ.get("EXEC_REPORTS_RECORDS_ENDPOINT_URL") or None)
    if kind == "postgres":
        dsn = environ.get("EXEC_REPORTS_RECORDS_DSN")
        if not dsn:
            raise ConfigurationError("EXEC_REPORTS_RECORDS_DSN: set it to the record store's connection string")
        return PostgresRecordStore(dsn)
    if kind == "local":
        path = environ.get("EXEC_REPORTS_RECORDS_PATH")
        if not path:
            raise ConfigurationError("EXEC_REPORTS_RECORDS_PATH: set it to the delivery records folder (or set "
                                     "EXEC_REPORTS_RECORDS to s3 or postgres)")
        return LocalRecordStore(path)
    raise ConfigurationError(f"EXEC_REPORTS_RECORDS must be s3, postgres or local, got {kind!r}")


def handle_feedback_notification(body: Any, environ: Mapping[str, str]) -> FeedbackResult:
    """One SNS notification (or its SES event) from the handler: applied to the shared record store.
    EXEC_REPORTS_SUPPRESS_ON_FEEDBACK=false records feedback without suppressing addresses."""
    suppress = environ.get("EXEC_REPORTS_SUPPRESS_ON_FEEDBACK", "true").strip().lower() not in ("false", "0", "no")
    result = apply_feedback(feedback_store_from_env(environ), parse_feedback(body), suppress=suppress)
    for line in result.matched:
        log.info("SES feedback: %s", line)
    for address in result.suppressed:
        log.warning("SES feedback: %s suppressed (permanent bounce or complaint)", address)
    for message_id in result.unmatched:
        log.warning("SES feedback for message %s matches no delivery record (not sent by exec-reports, or its "
                    "record is not written yet)", message_id)
    return result
