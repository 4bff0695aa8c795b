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
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

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
