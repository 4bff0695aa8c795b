"""The local outbox: each message is written as an ``.eml`` (exactly what SES would receive) plus an
``.html`` preview to open in a browser (charts embedded as data: URIs, since cid: only resolves inside a
message). It runs the shared send pipeline (``BaseBackend``) like SES and SMTP, up to the last call."""

from __future__ import annotations

from pathlib import Path

from flows.delivery.base import BaseBackend
from flows.delivery.message import Email, slug


class OutboxBackend(BaseBackend):
    name = "outbox"

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder

    def provider_send(self, connection: None, email: Email, raw: bytes) -> str:
        """The write that "sends": claimed right before it, as a network backend's provider call is."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = f"{email.report_key}--{slug(email.to[0]) if email.to else 'no-recipient'}"
        eml_path = self.folder / f"{stem}.eml"
        eml_path.write_bytes(raw)
        (self.folder / f"{stem}.html").write_text(email.preview_html(), encoding="utf-8")
        return str(eml_path)
