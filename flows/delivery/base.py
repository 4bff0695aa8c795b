"""The message model every backend sends, and the result every backend returns."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

from flows.errors import DeliveryError


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

    @property
    def envelope_recipients(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.to + self.bcc))

    @property
    def report_key(self) -> str:
        """Stable, file- and artifact-safe name: ``portfolio-cfo``, ``jada-cto``, ``portfolio-cfo-b``."""
        return slug("-".join(part for part in (self.tenant, self.role, self.variant) if part))

    def to_mime(self) -> EmailMessage:
        """RFC 5322 message, multipart/alternative: text/plain first, then text/html, both UTF-8."""
        message = EmailMessage()
        message["Subject"] = " ".join(self.subject.split())  # no header injection through data
        message["From"] = self.from_address
        message["To"] = ", ".join(self.to)
        message["Date"] = formatdate(localtime=False, usegmt=True)
        domain = self.from_address.rsplit("@", 1)[-1].strip(">") or "exec-reports.example"
        message["Message-ID"] = make_msgid(idstring=self.report_key, domain=domain)
        message["X-Exec-Reports-Report"] = f"{self.role}; tenant={self.tenant}; period={self.period}"
        # SES reads (and strips) these two headers on raw sends, through the API and its SMTP interface.
        if self.configuration_set:
            message["X-SES-CONFIGURATION-SET"] = ses_tag_value(self.configuration_set)
        if self.tags:
            message["X-SES-MESSAGE-TAGS"] = ", ".join(
                f"{ses_tag_value(name)}={ses_tag_value(value)}" for name, value in self.tags.items())
        message.set_content(self.text, subtype="plain", charset="utf-8")
        message.add_alternative(self.html, subtype="html", charset="utf-8")
        return message


@dataclass
class DeliveryResult:
    recipients: tuple[str, ...]
    status: str  # "sent" | "failed" | "skipped" | "dry-run"
    location: str = ""  # outbox path, or provider message id
    error: str = ""


class PreflightOnce:
    """Network backends check once per run that they can send at all (sender verified, login
    works). A failure is remembered, so every later send raises the same error and nothing goes out.
    Subclasses implement ``_check_can_send`` and call ``_init_preflight`` in their ``__init__``."""

    def _init_preflight(self) -> None:
        self._preflight_lock = threading.Lock()
        self._preflight_done = False
        self._preflight_error: Exception | None = None

    def preflight(self) -> None:
        with self._preflight_lock:
            if self._preflight_error is not None:
                raise self._preflight_error
            if self._preflight_done:
                return
            try:
                self._check_can_send()
            except DeliveryError as exc:
                self._preflight_error = exc
                raise
            self._preflight_done = True

    def _check_can_send(self) -> None:
        raise NotImplementedError


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


_UNSAFE = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    return _UNSAFE.sub("-", text.lower()).strip("-")


_SES_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def ses_tag_value(text: str) -> str:
    """SES tag names and values allow only ASCII letters, digits, '_' and '-'."""
    return _SES_TAG_UNSAFE.sub("_", text)[:255] or "_"
