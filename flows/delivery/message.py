"""The message model every backend sends and the result every backend returns: ``Email`` (one message,
its MIME form built here once for every backend, so the outbox shows exactly what SES or SMTP would
get), ``DeliveryResult``, and the two small interfaces a backend and a delivery claim offer."""

from __future__ import annotations

import base64
import html as html_lib
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any, Protocol

from flows.core.addresses import Mailbox, header_text

if TYPE_CHECKING:  # the drawn charts; imported for the annotation only (the Lambda trigger imports this module)
    from flows.render.charts import InlineImage


@dataclass(frozen=True)
class Email:
    subject: str
    html: str
    text: str
    from_address: str
    to: tuple[str, ...]
    role: str
    tenant: str  # tenant id, or "portfolio" for portfolio-scope reports
    period: str
    variant: str = ""  # A/B variant name, "" for the default report
    # Envelope-only recipients (an archive copy): never written into a header anyone receives.
    bcc: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    configuration_set: str | None = None
    # Charts referenced from the HTML as cid:<content_id>; sent as related parts of the HTML.
    images: tuple[InlineImage, ...] = field(default=(), compare=False, hash=False)

    def __post_init__(self) -> None:
        # Every address is one strictly parsed mailbox, so the envelope address below is exactly
        # the one the header shows (a plain string is parsed here and refused if it is not one).
        object.__setattr__(self, "from_address", Mailbox(self.from_address))
        object.__setattr__(self, "to", tuple(Mailbox(address) for address in self.to))
        object.__setattr__(self, "bcc", tuple(Mailbox(address) for address in self.bcc))

    @property
    def envelope_sender(self) -> str:
        return self.from_address.address

    @property
    def envelope_recipients(self) -> tuple[str, ...]:
        """The bare addresses for RCPT TO / SES Destinations: the To addresses, then the archive copy."""
        return tuple(dict.fromkeys(mailbox.address for mailbox in self.to + self.bcc))

    @property
    def report_key(self) -> str:
        """Stable, file- and artifact-safe name: ``portfolio-cfo``, ``jada-cto``, ``portfolio-cfo-b``."""
        return slug("-".join(part for part in (self.tenant, self.role, self.variant) if part))

    def to_mime(self) -> EmailMessage:
        """RFC 5322 message, multipart/alternative: text/plain first, then text/html, both UTF-8.

        With charts, the HTML part is multipart/related: the HTML, then one image/png part per chart
        with its Content-ID (RFC 2387), so mail clients show them inline without fetching anything."""
        message = EmailMessage()
        # Data never adds a header line or a control/bidi character to a header.
        message["Subject"] = header_text(self.subject)
        message["From"] = self.from_address
        message["To"] = ", ".join(self.to)
        message["Date"] = formatdate(localtime=False, usegmt=True)
        domain = self.from_address.address.rsplit("@", 1)[-1]
        message["Message-ID"] = make_msgid(idstring=self.report_key, domain=domain)
        message["X-Exec-Reports-Report"] = header_text(f"{self.role}; tenant={self.tenant}; period={self.period}")
        # An automated report (RFC 3834): vacation responders and auto-forwarders must not answer it,
        # and Exchange/Outlook suppresses its out-of-office and read-receipt replies.
        message["Auto-Submitted"] = "auto-generated"
        message["X-Auto-Response-Suppress"] = "All"
        # SES reads (and strips) these two headers on raw sends, through the API and its SMTP interface.
        if self.configuration_set:
            message["X-SES-CONFIGURATION-SET"] = ses_tag_value(self.configuration_set)
        if self.tags:
            message["X-SES-MESSAGE-TAGS"] = ", ".join(
                f"{ses_tag_value(name)}={ses_tag_value(value)}" for name, value in self.tags.items())
        message.set_content(self.text, subtype="plain", charset="utf-8")
        message.add_alternative(self.html, subtype="html", charset="utf-8")
        if self.images:
            html_part = message.get_payload()[1]
            for image in self.images:
                html_part.add_related(image.png, maintype="image", subtype="png", cid=f"<{image.content_id}>",
                                      disposition="inline", filename=image.filename)
        return message

    def preview_html(self) -> str:
        """The HTML with its charts embedded as data: URIs, to open in a browser from disk."""
        return embed_images(self.html, self.images)


def embed_images(html: str, images) -> str:
    for image in images:
        data = base64.b64encode(image.png).decode("ascii")
        html = html.replace(f'src="cid:{html_lib.escape(image.content_id)}"', f'src="data:image/png;base64,{data}"')
    return html


@dataclass
class DeliveryResult:
    recipients: tuple[str, ...]
    status: str  # "sent" | "failed" | "skipped" | "dry-run"
    location: str = ""  # outbox path, or provider message id
    error: str = ""


class ClaimLost(Exception):
    """Another run holds (or just took) this message: this run must not send it. The text says who."""


class SendClaim(Protocol):
    """The delivery record's claim on one message (``flows.delivery.records.MessageClaim``).

    A backend calls ``acquire()`` immediately before each provider call that may send the message
    (after rate limiting and any backoff, so a crash while waiting leaves nothing claimed) and
    ``release(reason)`` after a failed call that it will retry. ``acquire`` raises ``ClaimLost``, which
    the backend lets propagate unchanged."""

    def acquire(self) -> None: ...

    def release(self, reason: str) -> None: ...


class DeliveryBackend(Protocol):
    name: str

    def preflight(self) -> None:
        """Raise DeliveryError, before anything is sent, when this backend cannot send at all."""

    def send(self, email: Email, claim: SendClaim | None = None) -> DeliveryResult: ...

    def share_rate_limit(self, shared: Any) -> None:
        """Send through ``shared`` (a ``flows.delivery.ratelimit.SharedLimiter``) instead of this process's limiter."""


_UNSAFE = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    return _UNSAFE.sub("-", text.lower()).strip("-")


_SES_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def ses_tag_value(text: str) -> str:
    """SES tag names and values allow only ASCII letters, digits, '_' and '-'."""
    return _SES_TAG_UNSAFE.sub("_", text)[:255] or "_"
