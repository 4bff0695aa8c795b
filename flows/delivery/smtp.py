"""SMTP relay (for example the SES SMTP interface): the same MIME message, STARTTLS, AUTH, and the
same retry and rate rules as SES.

One connection per message: reports are few, and a fresh connection per attempt makes retries after
a dropped connection trivially correct. The password is resolved once, held in a ``Secret`` and
scrubbed from every error this module reports.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from flows.core.addresses import Mailbox
from flows.core.config import SmtpConfig
from flows.core.errors import ConfigurationError, DeliveryError
from flows.core.secrets import Secret, smtp_password
from flows.delivery.base import BaseBackend
from flows.delivery.message import DeliveryResult, Email
from flows.delivery.ratelimit import RateLimiter, Unlimited
from flows.delivery.retry import Failure, RetryPolicy

log = logging.getLogger("exec_reports")

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _reply_text(exc: smtplib.SMTPResponseException) -> str:
    detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {' '.join(detail.split())}"


def classify_smtp_error(exc: BaseException) -> Failure | None:
    """4xx replies and dropped connections are transient, 5xx replies are final (RFC 5321)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = {address: f"{code} {message.decode('utf-8', 'replace') if isinstance(message, bytes) else message}"
                   for address, (code, message) in exc.recipients.items()}
        reason = "recipient refused: " + "; ".join(f"{a}: {r}" for a, r in replies.items())
        codes = [code for code, _ in exc.recipients.values()]
        return Failure("transient" if all(400 <= c < 500 for c in codes) else "permanent", reason)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return Failure("permanent", f"SMTP authentication failed: {_reply_text(exc)}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return Failure("permanent", f"SMTP server does not support a required extension: {exc}")
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = _reply_text(exc)
        if "daily message quota" in reply.lower():
            return Failure("quota", f"SMTP {reply}")
        return Failure("transient" if 400 <= exc.smtp_code < 500 else "permanent", f"SMTP {reply}")
    if isinstance(exc, ssl.SSLError):  # before OSError: a bad certificate will not fix itself
        return Failure("permanent", f"SMTP TLS failed: {type(exc).__name__}: {exc}")
    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
        return Failure("transient", f"cannot reach the SMTP server: {type(exc).__name__}: {exc}")
    return None


class SmtpBackend(BaseBackend):
    name = "smtp"

    def __init__(self, settings: SmtpConfig, from_address: str, *, policy: RetryPolicy | None = None,
                 limiter: RateLimiter | None = None):
        super().__init__(policy=policy or RetryPolicy.from_settings(settings), limiter=limiter or (
            RateLimiter(settings.max_send_rate) if settings.max_send_rate else Unlimited()))
        self.settings = settings
        self.from_address = from_address
        self._password: Secret | None = None

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def redact(self, text: str) -> str:
        return self._password.redact(text) if self._password else text

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        connection = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
        try:
            connection.ehlo()
            if settings.starttls:
                context = ssl.create_default_context(cafile=settings.ca_file)
                connection.starttls(context=context)
                connection.ehlo()
            if settings.username:
                connection.login(settings.username, self._password.reveal() if self._password else "")
        except BaseException:
            connection.close()
            raise
        return connection

    def check_can_send(self) -> None:
        """Log in once and offer the sender (MAIL FROM, then RSET): a wrong host, password or sender
        fails the run here with one error instead of once per message."""
        settings = self.settings
        if not settings.host:
            raise ConfigurationError("SMTP needs a host: set SMTP_HOST or delivery.smtp.host")
        if settings.username:
            self._password = smtp_password(settings)
            if self._password is None:
                raise ConfigurationError(
                    f"delivery.smtp.username is set but no password was found: set {settings.password_env} "
                    "(or delivery.smtp.password_env), delivery.smtp.password_secret_id or password_secret_block")
            if not settings.starttls and settings.host not in _LOCAL_HOSTS:
                raise ConfigurationError(f"refusing to send the SMTP password to {self.where} without STARTTLS: "
                                         "set delivery.smtp.starttls: true")
        sender = Mailbox(self.from_address).address
        try:
            connection = self._connect()
            try:
                code, reply = connection.mail(sender)
                if code >= 400:
                    raise smtplib.SMTPSenderRefused(code, reply, sender)
                connection.rset()
            finally:
                connection.close()
        except Exception as exc:
            failure = classify_smtp_error(exc)
            if failure is None:
                raise
            who = f" as {settings.username}" if settings.username else ""
            raise DeliveryError(self.redact(f"SMTP preflight against {self.where}{who} failed, nothing was sent: "
                                             f"{failure.reason}")) from None
        log.info("SMTP preflight ok: %s accepts %s", self.where, sender)

    def flatten(self, message: EmailMessage) -> bytes:
        # Flattened here, not by smtplib.send_message: that one mangles body lines starting with
        # "From " into ">From " (mbox quoting), so the recipient would not get what the outbox shows.
        return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))  # SMTP lines end in CRLF

    @contextmanager
    def connection(self) -> Iterator[smtplib.SMTP]:
        """Connected and logged in before the claim: the next command sends the message."""
        connection = self._connect()
        try:
            yield connection
        finally:
            connection.close()

    def provider_send(self, connection: smtplib.SMTP, email: Email, raw: bytes) -> dict:
        # The envelope is exactly the header's addresses: each Mailbox was parsed strictly.
        refused = connection.sendmail(email.envelope_sender, list(email.envelope_recipients), raw)
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            pass  # accepted already: retrying now would send it twice
        return refused

    def classify_error(self, exc: BaseException) -> Failure | None:
        return classify_smtp_error(exc)

    def delivered(self, email: Email, message: EmailMessage, refused: dict) -> DeliveryResult:
        refused_to = [mailbox.address for mailbox in email.to if mailbox.address in refused]
        if refused_to:
            return DeliveryResult(recipients=email.to, status="failed",
                                  error=self.redact(f"recipient refused: {', '.join(refused_to)}"))
        location = f"smtp:{message['Message-ID']}"
        if refused:  # only the archive copy bounced: the recipient has the report
            return DeliveryResult(recipients=email.to, status="sent", location=location,
                                  error=self.redact(f"archive copy refused: {', '.join(refused)}"))
        return DeliveryResult(recipients=email.to, status="sent", location=location)
