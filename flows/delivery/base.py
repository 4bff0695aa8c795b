"""The message model every backend sends, and the result every backend returns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol


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
    bcc: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

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
        message.set_content(self.text, subtype="plain", charset="utf-8")
        message.add_alternative(self.html, subtype="html", charset="utf-8")
        return message


@dataclass
class DeliveryResult:
    recipients: tuple[str, ...]
    status: str  # "sent" | "failed" | "dry-run"
    location: str = ""  # outbox path, or provider message id
    error: str = ""


class DeliveryBackend(Protocol):
    name: str

    def send(self, email: Email) -> DeliveryResult: ...


_UNSAFE = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    return _UNSAFE.sub("-", text.lower()).strip("-")
