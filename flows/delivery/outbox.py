"""The local outbox: each message is written as an ``.eml`` (exactly what SES would receive) plus an
``.html`` preview to open in a browser (charts embedded as data: URIs, since cid: only resolves inside a
message)."""

from __future__ import annotations

from pathlib import Path

from flows.delivery.base import DeliveryResult, Email, SendClaim, slug


class OutboxBackend:
    name = "outbox"

    def __init__(self, folder: Path):
        self.folder = folder

    def preflight(self) -> None:
        """Nothing to check: a folder on disk is always ready."""

    def send(self, email: Email, claim: SendClaim | None = None) -> DeliveryResult:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = f"{email.report_key}--{slug(email.to[0]) if email.to else 'no-recipient'}"
        raw = email.to_mime().as_bytes()
        if claim is not None:
            claim.acquire()  # the same place as a network backend: right before the write that "sends"
        eml_path = self.folder / f"{stem}.eml"
        eml_path.write_bytes(raw)
        (self.folder / f"{stem}.html").write_text(email.preview_html(), encoding="utf-8")
        return DeliveryResult(recipients=email.to, status="sent", location=str(eml_path))
