"""Bidirectional controls in data never reach an email (case 6 of the second hardening pass: U+202E, the
right-to-left override, in data fields reached the bodies raw, 12 times in 4 emails). Each field below is
shown by some brief; the text stays, the control characters go, in the HTML, the text part and the subject."""

from __future__ import annotations

import email
from email import policy

from flows.core.addresses import BIDI_CONTROLS
from flows.core.config import load_config
from flows.core.period import parse_period
from flows.delivery.outbox import OutboxBackend
from flows.orchestrator.run import run_plain
from tests.conftest import SAMPLE_PERIOD

RLO, PDF, LRI, PDI = "\u202e", "\u202c", "\u2066", "\u2069"


def plant(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_bidi_controls_planted_in_data_fields_are_stripped_from_every_email(portfolio_copy, tmp_path):
    data = portfolio_copy.parent / "data" / "jada"
    plant(data / "pipeline.csv", "Wedding party charter, Okafor family",
          f"Wedding party charter, {RLO}ylimaf rofakO{PDF}")
    plant(data / "handoffs" / "website-and-booking.md", "Create the Sailo listing",
          f"Create the {LRI}Sailo{PDI} listing {RLO}gpj.exe{PDF}")
    plant(data / "aws-snapshot.json", '"name": "jada-booking-webhook"', f'"name": "jada-{RLO}booking-webhook"')
    summary, _ = run_plain(load_config(portfolio_copy), parse_period(SAMPLE_PERIOD),
                           backend=OutboxBackend(tmp_path / "outbox"))
    assert summary["failed"] == []

    shown = {"ylimaf rofakO": 0, "Create the Sailo listing gpj.exe": 0, "jada-booking-webhook": 0}
    for path in sorted((tmp_path / "outbox").rglob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        parts = [str(message["Subject"]), message.get_body(("plain",)).get_content(),
                 message.get_body(("html",)).get_content()]
        for part in parts:
            assert not set(part) & BIDI_CONTROLS, (path.name, sorted(f"U+{ord(c):04X}" for c in set(part) & BIDI_CONTROLS))
            for text in shown:
                shown[text] += " ".join(part.split()).count(text)
    # The planted fields did reach the emails (without their controls), so the check above means something.
    assert all(count > 0 for count in shown.values()), shown
