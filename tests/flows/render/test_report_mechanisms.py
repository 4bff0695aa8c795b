"""send_if, structured actions, per-tenant overrides, A/B variants, and new roles as one file."""

from __future__ import annotations

import textwrap

from flows.core.config import load_config
from flows.core.period import parse_period
from flows.delivery.outbox import OutboxBackend
from flows.orchestrator.run import run_plain
from flows.plan.definitions import load_definitions
from tests.conftest import SAMPLE_PERIOD

PERIOD = parse_period(SAMPLE_PERIOD)


def write_report(config_path, relative: str, text: str) -> None:
    path = config_path.parent.parent / "reports" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


OWNER = """
---
role: owner
title: Owner brief
subject: "{{ tenant.name }} owner brief"
scope: tenant
metrics: [finance.cash_on_hand]
---
Default report for {{ tenant.name }}: {{ money(finance.cash_on_hand) }}
"""


def test_a_new_role_is_one_markdown_file_and_no_code(portfolio_copy, tmp_path):
    write_report(portfolio_copy, "board.md", """
        ---
        role: board
        title: Board letter
        subject: "Board letter {{ period.label }}"
        scope: portfolio
        metrics: [finance.cash_on_hand]
        recipients: [board@holdings.example]
        ---
        {% for t in tenants %}
        - {{ t.name }} holds {{ money(t.finance.cash_on_hand) }}
        {% endfor %}
        """)
    summary, rendered = run_plain(load_config(portfolio_copy), PERIOD, roles=["board"],
                                  backend=OutboxBackend(tmp_path))
    [sent] = summary["sent"]
    assert sent["recipients"] == ["board@holdings.example"] and sent["subject"] == "Board letter 2026-W47"
    assert "QuickDumpNow holds $" in rendered["portfolio-board"].text


def test_send_if_false_records_the_report_as_skipped_and_sends_nothing(portfolio_copy, tmp_path):
    write_report(portfolio_copy, "alerts.md", """
        ---
        role: alerts
        title: Alerts
        subject: Alerts
        scope: tenant
        metrics: [finance.cash_on_hand]
        recipients: [alerts@holdings.example]
        send_if: checks | length > 0
        checks:
          - id: jada-only
            when: tenant.id == "jada" and finance.cash_on_hand > -1000000000
            severity: high
            message: "{{ tenant.name }} cash is {{ money(finance.cash_on_hand) }}"
        ---
        {% for c in checks %}- {{ c.message }}
        {% endfor %}
        """)
    config = load_config(portfolio_copy)
    summary, rendered = run_plain(config, PERIOD, roles=["alerts"], backend=OutboxBackend(tmp_path))
    fired = {c["tenant"] for c in summary["checks"] if c["status"] == "fired"}
    sent = {item["tenant"] for item in summary["sent"]}
    skipped = {item["tenant"]: item["reason"] for item in summary["skipped"]}
    assert fired == {"jada"}
    assert sent == fired
    assert set(skipped) == {t.id for t in config.tenants} - fired
    assert all(reason == "send_if is false (checks | length > 0)" for reason in skipped.values())
    assert len(list(tmp_path.glob("*.eml"))) == len(sent)


def test_agenda_items_written_with_the_helpers_are_actions_with_owner_tenant_priority_and_due(portfolio_copy):
    write_report(portfolio_copy, "agenda.md", """
        ---
        role: agenda
        title: Agenda
        subject: Agenda
        scope: portfolio
        metrics: [finance.cash_on_hand]
        recipients: [ceo@holdings.example]
        ---
        {% for t in tenants %}
        ## {{ t.name }}

        {{ action("Rotate the **deploy** key of " ~ t.name, priority="high", due=days_after(period.end, 30), owner="cto", tenant=t.id) }}
        {{ action("Plain item for " ~ t.name, tenant=t.id) }}
        {% set _ = action("Built for " ~ t.name ~ " but never written") %}
        - [ ] Typed by hand for {{ t.name }}
        - [x] Done item
        {% endfor %}

        ## Portfolio

        {{ action("Review insurance across entities") }}
        """)
    summary, rendered = run_plain(load_config(portfolio_copy), PERIOD, roles=["agenda"], dry_run=True)
    actions = summary["actions"]
    jada = [a for a in actions if a["tenant"] == "jada"]
    assert jada[0] == {"text": "Rotate the **deploy** key of JADA", "owner": "cto", "tenant": "jada",
                       "priority": "high", "due": "2026-12-22", "heading": "JADA", "report": "agenda"}
    assert jada[1]["text"] == "Plain item for JADA" and jada[1]["owner"] == "agenda"
    assert jada[1]["priority"] == "medium" and jada[1]["due"] == ""
    # Only what the helpers recorded and the email shows: not typed task lines, not a dropped action.
    assert not any(a["text"].startswith(("Done item", "Typed by hand", "Built for")) for a in actions)
    assert "☐ Typed by hand for JADA" in rendered["portfolio-agenda"].text
    assert [a["tenant"] for a in actions if a["text"].startswith("Review insurance")] == ["portfolio"]
    assert [a["heading"] for a in actions if a["text"].startswith("Review insurance")] == ["Portfolio"]


def test_a_tenant_override_replaces_the_default_for_that_tenant_only(portfolio_copy):
    write_report(portfolio_copy, "owner.md", OWNER)
    write_report(portfolio_copy, "tenants/jada/owner.md", OWNER.replace("Default report", "Charter-specific report"))
    summary, rendered = run_plain(load_config(portfolio_copy), PERIOD, roles=["owner"], dry_run=True)
    assert summary["failed"] == []
    # Each starts with its body, then the note of how far its books reach (they stop before the week's end).
    jada_body, jada_note = rendered["jada-owner"].text.split("\n\nAbout these figures\n\n", 1)
    assert jada_note.startswith("Note: The books run through") and jada_body.startswith("Charter-specific report for JADA")
    body, note = rendered["quickdumpnow-owner"].text.split("\n\nAbout these figures\n\n", 1)
    assert note.startswith("Note: The books run through") and body.startswith("Default report for QuickDumpNow")


def test_overrides_and_variants_without_a_proper_default_are_definition_errors(portfolio_copy):
    write_report(portfolio_copy, "tenants/jada/cfo.md", (portfolio_copy.parent.parent / "reports" / "cfo.md").read_text())
    write_report(portfolio_copy, "lonely-b.md", OWNER.replace("role: owner", "role: lonely\nvariant: b\nsplit: 50"))
    _, problems = load_definitions(portfolio_copy.parent.parent / "reports")
    messages = [str(p) for p in problems]
    assert any("tenants/jada/cfo.md" in m and "per-tenant overrides replace tenant-scope reports" in m
               for m in messages)
    assert any("lonely-b.md" in m and "no default report for role 'lonely'" in m for m in messages)


def test_an_override_for_an_unknown_tenant_fails_the_run_visibly(portfolio_copy):
    write_report(portfolio_copy, "owner.md", OWNER)
    write_report(portfolio_copy, "tenants/jadaa/owner.md", OWNER)
    summary, _ = run_plain(load_config(portfolio_copy), PERIOD, roles=["owner"], dry_run=True)
    [failure] = summary["failed"]
    assert "override for unknown tenant 'jadaa'" in failure["reason"]
    assert len(summary["dry_run"]) == 4


def test_each_recipient_gets_one_variant_deterministically_and_the_run_records_which(portfolio_copy):
    recipients = [f"reader{i}@holdings.example" for i in range(40)]
    text = portfolio_copy.read_text().replace("cfo: [cfo@holdings.example]", f"cfo: [{', '.join(recipients)}]")
    portfolio_copy.write_text(text)
    cfo = (portfolio_copy.parent.parent / "reports" / "cfo.md").read_text()
    write_report(portfolio_copy, "cfo-short.md", cfo.replace("role: cfo", "role: cfo\nvariant: short\nsplit: 50")
                 .replace("# Cash and runway", "# Short version: cash and runway"))
    config = load_config(portfolio_copy)
    first, rendered = run_plain(config, PERIOD, roles=["cfo"], dry_run=True)
    second, _ = run_plain(config, PERIOD, roles=["cfo"], dry_run=True)
    assignment = {item["recipients"][0]: item["variant"] for item in first["dry_run"]}
    assert sorted(assignment) == sorted(recipients)  # each recipient exactly once
    assert assignment == {item["recipients"][0]: item["variant"] for item in second["dry_run"]}
    assert 5 <= list(assignment.values()).count("short") <= 35  # both variants are in use
    assert rendered["portfolio-cfo-short"].markdown.startswith("# Short version")
    assert rendered["portfolio-cfo"].markdown.startswith("# Cash and runway")
