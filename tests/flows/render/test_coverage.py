"""How far the books reach, said by the engine in every brief that shows ledger figures (case 2 of the
second hardening pass: books cut 12 days before the period end passed the freshness rule and no email
said so)."""

from __future__ import annotations

import datetime as dt
import email
import textwrap
from email import policy

from flows.core.period import parse_period
from flows.plan.definitions import load_definitions
from flows.render.coverage import coverage_notes

PERIOD = parse_period("2026-W47")  # Nov 16-22, 2026


def definition(tmp_path, scope: str, metrics: list[str]):
    (tmp_path / "brief.md").write_text(textwrap.dedent(f"""\
        ---
        role: brief
        title: Brief
        subject: Brief
        scope: {scope}
        metrics: [{", ".join(metrics)}]
        ---
        Hello
        """), encoding="utf-8")
    [loaded], problems = load_definitions(tmp_path)
    assert problems == []
    return loaded


VIEWS = [{"id": "jada", "name": "JADA"}, {"id": "acme", "name": "Acme"}]


def test_books_that_stop_before_the_period_end_are_named_with_their_date(tmp_path):
    brief = definition(tmp_path, "portfolio", ["finance.cash_on_hand"])
    values = {"jada": {"finance.data_through": dt.date(2026, 11, 10)},
              "acme": {"finance.data_through": dt.date(2026, 11, 22)}}
    assert coverage_notes(brief, VIEWS, values, PERIOD) == [
        "JADA's books run through Nov 10, before the period's end (Nov 22, 2026): its figures stop there."]
    values["acme"]["finance.data_through"] = dt.date(2025, 12, 31)
    assert coverage_notes(brief, VIEWS, values, PERIOD) == [
        "The books run through Nov 10 for JADA and Dec 31, 2025 for Acme, before the period's end "
        "(Nov 22, 2026): figures from them stop there."]


def test_books_through_the_period_end_or_a_brief_without_ledger_figures_get_no_note(tmp_path):
    values = {"jada": {"finance.data_through": dt.date(2026, 11, 22)}}
    assert coverage_notes(definition(tmp_path, "tenant", ["finance.cash_on_hand"]), VIEWS[:1], values, PERIOD) == []
    late = {"jada": {"finance.data_through": dt.date(2026, 11, 10)}}
    assert coverage_notes(definition(tmp_path, "tenant", ["sales.open_deal_count"]), VIEWS[:1], late, PERIOD) == []
    assert coverage_notes(definition(tmp_path, "tenant", ["finance.cash_on_hand"]), VIEWS[:1], late, PERIOD) == [
        "The books run through Nov 10, before the period's end (Nov 22, 2026): figures from them stop there."]


def test_a_run_gathers_how_far_the_books_reach_for_a_brief_that_does_not_declare_it(portfolio_copy):
    from flows.core.config import load_config
    from flows.delivery.outbox import OutboxBackend
    from flows.orchestrator.run import run_plain

    reports = portfolio_copy.parent.parent / "reports"
    for path in reports.glob("*.md"):
        path.unlink()
    (reports / "brief.md").write_text(textwrap.dedent("""\
        ---
        role: brief
        title: Cash
        subject: Cash {{ tenant.name }}
        scope: tenant
        metrics: [finance.cash_on_hand]
        ---
        Cash: {{ money(finance.cash_on_hand) }}
        """), encoding="utf-8")
    summary, _ = run_plain(load_config(portfolio_copy), PERIOD, tenants=["jada"],
                           backend=OutboxBackend(portfolio_copy.parent / "out"))
    [sent] = summary["sent"]
    with open(sent["location"], "rb") as handle:
        message = email.message_from_binary_file(handle, policy=policy.default)
    assert "books run through Nov 19, before" in " ".join(message.get_body(("plain",)).get_content().split())


def test_past_five_entities_behind_the_note_groups_them_by_date(tmp_path):
    brief = definition(tmp_path, "portfolio", ["finance.cash_on_hand"])
    views = [{"id": f"t{i}", "name": f"Entity {i}"} for i in range(100)]
    values = {f"t{i}": {"finance.data_through": dt.date(2026, 11, 19 if i % 4 else 15)} for i in range(100)}
    assert coverage_notes(brief, views, values, PERIOD) == [
        "The books run through Nov 15 for 25 entities (Entity 0, Entity 4 and 23 more); and Nov 19 for 75 "
        "entities (Entity 1, Entity 2 and 73 more), before the period's end (Nov 22, 2026): figures from them "
        "stop there."]
