"""The plain pipeline: planning, isolation, failures that stay local, checks."""

from __future__ import annotations

import base64
import email
import json
import re
import subprocess
import sys
import textwrap
from email import policy
from pathlib import Path

from flows.core.config import load_config
from flows.core.period import parse_period as parse
from flows.delivery.outbox import OutboxBackend
from flows.orchestrator.run import run_plain
from flows.plan.definitions import load_definitions
from flows.plan.plan import plan_run
from tests.conftest import SAMPLE_CONFIG, SAMPLE_PERIOD

TENANT_REPORT = """
---
role: owner
title: Owner brief
subject: "{{ tenant.name }} {{ period.label }}"
scope: tenant
metrics:
  - finance.cash_on_hand
  - handoffs.open_items
checks:
  - id: low-cash
    when: finance.cash_on_hand < 1000000
    severity: high
    message: "{{ tenant.name }} has {{ money(finance.cash_on_hand) }}."
---
# {{ tenant.name }}

Cash: {{ money(finance.cash_on_hand) }}

{% for item in handoffs.open_items %}
- [ ] {{ item.text }}
{% endfor %}
"""


def add_report(config_path, name: str, text: str) -> None:
    (config_path.parent.parent / "reports" / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def test_each_tenant_and_source_is_gathered_once_for_all_reports(sample_config, sample_period):
    definitions, _ = load_definitions(sample_config.reports_path)
    plan = plan_run(sample_config, definitions, sample_period)
    tenants = [t.id for t in sample_config.tenants]
    sources_used = {source for _, source in plan.gathers}
    assert len(plan.gathers) == len(tenants) * len(sources_used)
    ledger_metrics = plan.gathers[("jada", "ledger")]
    assert len(ledger_metrics) == len(set(ledger_metrics))
    # Every metric any selected report declares is planned for every tenant.
    assert {"finance.burn_rate", "finance.cash_on_hand"} <= set(ledger_metrics)


def test_selecting_roles_narrows_the_gathering(sample_config, sample_period):
    definitions, _ = load_definitions(sample_config.reports_path)
    plan = plan_run(sample_config, definitions, sample_period, roles=["cmo"])
    # The CMO brief reads marketing, plus unit economics (booking value), revenue targets and new customers
    # (the 90-day milestone) and the local SEO handoff notes.
    assert {source for _, source in plan.gathers} == {"marketing", "ledger", "handoffs", "customers"}
    # ... and how far the books reach, which every brief showing ledger figures says when it is before the end.
    assert set(plan.gathers[("jada", "ledger")]) == {"finance.unit_economics", "finance.revenue_targets",
                                                     "finance.data_through"}


def test_a_tenant_whose_source_fails_does_not_stop_the_others(portfolio_copy, tmp_path):
    add_report(portfolio_copy, "owner.md", TENANT_REPORT)
    (portfolio_copy.parent / "data" / "quickdumpnow" / "ledger.csv").unlink()
    config = load_config(portfolio_copy)
    backend = OutboxBackend(tmp_path / "out")
    summary, _ = run_plain(config, parse(SAMPLE_PERIOD), roles=["owner"], backend=backend)
    sent_tenants = {item["tenant"] for item in summary["sent"]}
    assert sent_tenants == {"jada", "queenofsandiego", "dangerouscentaur"}
    [failure] = summary["failed"]
    assert failure["report"] == "owner" and failure["tenant"] == "quickdumpnow"
    assert "finance.cash_on_hand" in failure["reason"] and "quickdumpnow/ledger.csv" in failure["reason"]
    assert len(list((tmp_path / "out").glob("*.eml"))) == 3


def test_a_portfolio_report_missing_a_required_figure_for_one_tenant_leaves_it_out_instead_of_a_wrong_number(
        portfolio_copy):
    (portfolio_copy.parent / "data" / "jada" / "ledger.csv").write_text(
        "date,account,category,amount,memo\n2026-10-01,4000,Sales,12x,typo\n", encoding="utf-8")
    summary, rendered = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["cfo", "cmo"],
                                  dry_run=True)
    assert summary["failed"] == []
    assert {item["report"] for item in summary["dry_run"]} == {"cfo", "cmo"}
    [warning] = [w for w in summary["warnings"] if w.startswith("cfo/portfolio: left out JADA (jada)")]
    assert "finance.burn_rate" in warning and "ledger.csv:2: column 'amount': not a number (value '12x')" in warning
    rendered_cfo = rendered["portfolio-cfo"]
    # The first note of the "About these figures" box after the brief, in the text part and the HTML.
    assert rendered_cfo.notes[0].startswith("Not in this report: JADA: financial figures unavailable.")
    assert "About these figures Note: Not in this report: JADA: financial figures" in " ".join(rendered_cfo.text.split())
    assert rendered_cfo.html.index("<h2") < rendered_cfo.html.index("Not in this report")
    assert rendered_cfo.text.count("JADA") == 1  # named once, as left out; no figure of it anywhere


def test_a_portfolio_report_missing_a_required_figure_for_every_tenant_fails(portfolio_copy):
    (portfolio_copy.parent / "data" / "jada" / "ledger.csv").write_text(
        "date,account,category,amount,memo\n2026-10-01,4000,Sales,12x,typo\n", encoding="utf-8")
    summary, rendered = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["cfo"],
                                  tenants=["jada"], dry_run=True)
    [failure] = summary["failed"]
    assert failure["report"] == "cfo"
    # grouped by tenant and cause, the cause first and the metrics it took after it
    assert failure["reason"].startswith("required metric unavailable: jada: ")
    assert "finance.burn_rate" in failure["reason"]
    assert "ledger.csv:2: column 'amount': not a number (value '12x')" in failure["reason"]
    assert rendered == {}


def without_jadas_handoffs(config_text: str) -> str:
    """The sample config with JADA's handoffs source removed (its line, whatever its settings)."""
    changed = re.sub(r"(?m)^ *handoffs: \{path: data/jada/handoffs\b.*\n", "", config_text)
    assert changed != config_text, "the sample config has no handoffs line for JADA"
    return changed


def test_optional_metrics_show_as_not_available_in_plain_words_and_the_reason_goes_to_the_summary(portfolio_copy):
    add_report(portfolio_copy, "owner.md", TENANT_REPORT.replace(
        "  - handoffs.open_items\n", "optional_metrics:\n  - handoffs.open_items\n").replace(
        "{% for item in handoffs.open_items %}\n- [ ] {{ item.text }}\n{% endfor %}",
        "Open items: {{ handoffs.open_items }}"))
    portfolio_copy.write_text(without_jadas_handoffs(portfolio_copy.read_text()))
    summary, rendered = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["owner"],
                                  tenants=["jada"], dry_run=True)
    assert summary["failed"] == []
    assert "Open items: not available (not set up yet)" in rendered["jada-owner"].text
    assert "handoffs" not in rendered["jada-owner"].text
    assert ("owner/jada: handoffs.open_items unavailable for jada: source 'handoffs' is not configured for "
            "tenant 'jada'") in summary["warnings"]


def test_one_tenants_data_never_appears_in_another_tenants_email(portfolio_copy, tmp_path):
    add_report(portfolio_copy, "owner.md", TENANT_REPORT)
    summary, rendered = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["owner"], dry_run=True)
    jada_items = {line for line in rendered["jada-owner"].text.splitlines() if line.startswith("- ☐")}
    assert jada_items, "the sample JADA handoff notes have open items"
    for key, email_ in rendered.items():
        if key != "jada-owner":
            assert not jada_items & set(email_.text.splitlines())
            assert "JADA" not in email_.text


def test_checks_fire_per_tenant_sorted_by_severity(portfolio_copy):
    summary, rendered = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["cfo"], dry_run=True)
    fired = [c for c in summary["checks"] if c["status"] == "fired"]
    assert fired, "the sample data burns cash, so burning-cash fires"
    order = ["critical", "high", "medium", "low", "info"]
    assert [order.index(c["severity"]) for c in fired] == sorted(order.index(c["severity"]) for c in fired)
    burning = {c["tenant"] for c in fired if c["id"] == "burning-cash"}
    assert burning and burning <= {"jada", "queenofsandiego", "quickdumpnow", "dangerouscentaur"}
    assert any("burns $" in c["message"] for c in fired)


def test_a_check_over_an_unavailable_optional_metric_is_reported_as_unknown_not_passed(portfolio_copy):
    report = TENANT_REPORT.replace("  - handoffs.open_items\n", "optional_metrics:\n  - handoffs.open_items\n")
    report = report.replace("checks:\n", "checks:\n  - id: many-open\n    when: handoffs.open_items | length > 0\n"
                            "    severity: low\n    message: open items\n")
    report = report.replace("{% for item in handoffs.open_items %}\n- [ ] {{ item.text }}\n{% endfor %}", "")
    add_report(portfolio_copy, "owner.md", report)
    portfolio_copy.write_text(without_jadas_handoffs(portfolio_copy.read_text()))
    summary, _ = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["owner"], tenants=["jada"],
                           dry_run=True)
    [unknown] = [c for c in summary["checks"] if c["id"] == "many-open"]
    assert unknown["status"] == "unknown"
    # The email's words are plain; the run summary keeps the metric and the technical reason.
    assert unknown["message"] == "could not be checked: a figure it needs is not available (not set up yet)"
    assert "handoffs.open_items" in unknown["detail"] and "not configured" in unknown["detail"]


def test_outbox_eml_is_multipart_alternative_text_then_html_with_its_charts_in_utf8(sample_config, sample_period,
                                                                                   tmp_path):
    summary, _ = run_plain(sample_config, sample_period, roles=["ceo"], backend=OutboxBackend(tmp_path))
    [sent] = summary["sent"]
    message = email.message_from_bytes((tmp_path / sent["location"].rsplit("/", 1)[1]).read_bytes(),
                                       policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    text_part, related = message.iter_parts()
    assert [text_part.get_content_type(), related.get_content_type()] == ["text/plain", "multipart/related"]
    html_part, *images = related.iter_parts()
    assert html_part.get_content_type() == "text/html" and [i.get_content_type() for i in images] == ["image/png"]
    parts = [text_part, html_part]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert message["To"] == "ceo@holdings.example"
    assert message["From"] == "Executive Reports <reports@holdings.example>"
    assert message["Subject"].startswith("CEO brief Nov 16–22, 2026")
    assert message["Message-ID"] and message["Date"]
    assert "JADA" in parts[0].get_content() and "<table" in parts[1].get_content()
    preview = tmp_path / sent["location"].rsplit("/", 1)[1].replace(".eml", ".html")
    cid = images[0]["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html_part.get_content()
    # The preview is the same HTML with the chart inline as a data: URI (cid: only resolves in a message).
    assert preview.read_text(encoding="utf-8") == html_part.get_content().replace(
        f'src="cid:{cid}"', 'src="data:image/png;base64,' + base64.b64encode(images[0].get_content()).decode() + '"')


def flaky_registry(failures: list[BaseException]):
    """A registry with one source that raises the given errors, in order, before it succeeds."""
    from sources.registry import MetricSpec, SourceRegistry

    registry = SourceRegistry()
    calls = []

    @registry.register("flaky", "raises, then answers", [MetricSpec("flaky.value", "a number", "number")])
    def gather(settings, context):
        calls.append(context.tenant_id)
        if failures:
            raise failures.pop(0)
        return {"flaky.value": 42}

    return registry, calls


def test_a_transient_error_is_retried_and_then_the_value_is_used(portfolio_copy, sample_period):
    from flows.gather.gather import gather_with_retries

    portfolio_copy.write_text(portfolio_copy.read_text().replace("    sources:\n", "    sources:\n      flaky: {}\n", 1))
    registry, calls = flaky_registry([ConnectionResetError("peer reset"), TimeoutError("slow disk")])
    slept = []
    values = gather_with_retries(load_config(portfolio_copy), "jada", "flaky", ["flaky.value"], sample_period,
                                 registry, delays=(1.0, 5.0), sleep=slept.append)
    assert values == {"flaky.value": 42}
    assert calls == ["jada", "jada", "jada"]
    assert 0.5 <= slept[0] <= 1.5 and 2.5 <= slept[1] <= 7.5  # jittered exponential backoff


def test_a_permanent_error_is_not_retried_and_makes_the_metric_unavailable(portfolio_copy, sample_period):
    from flows.gather.gather import gather_with_retries

    portfolio_copy.write_text(portfolio_copy.read_text().replace("    sources:\n", "    sources:\n      flaky: {}\n", 1))
    registry, calls = flaky_registry([KeyError("column")])
    values = gather_with_retries(load_config(portfolio_copy), "jada", "flaky", ["flaky.value"], sample_period,
                                 registry, sleep=lambda _: None)
    assert calls == ["jada"]
    assert str(values["flaky.value"]) == "unavailable (source 'flaky' failed: KeyError: 'column')"


def test_tenants_are_split_into_near_equal_batches():
    from flows.gather.gather import tenant_batches

    batches = tenant_batches([f"t{i}" for i in range(10)], 4)
    assert [len(b) for b in batches] == [3, 3, 2, 2]
    assert sum(batches, []) == [f"t{i}" for i in range(10)]
    assert tenant_batches(["a", "b"], 8) == [["a"], ["b"]]


def test_a_portfolio_report_for_some_tenants_does_not_use_up_the_full_reports_delivery(portfolio_copy, tmp_path):
    from flows.delivery.records import LocalRecordStore

    config = load_config(portfolio_copy)
    store = LocalRecordStore(tmp_path / "records")
    backend = OutboxBackend(tmp_path / "out")
    partial, _ = run_plain(config, parse(SAMPLE_PERIOD), roles=["cfo"], tenants=["jada"], backend=backend,
                           records=store, run="partial")
    full, _ = run_plain(config, parse(SAMPLE_PERIOD), roles=["cfo"], backend=backend, records=store, run="full")
    again, _ = run_plain(config, parse(SAMPLE_PERIOD), roles=["cfo"], backend=backend, records=store, run="again")
    assert [item["report"] for item in partial["sent"]] == ["cfo"]
    assert [item["report"] for item in full["sent"]] == ["cfo"] and full["skipped"] == []
    assert again["sent"] == [] and [item["report"] for item in again["skipped"]] == ["cfo"]


def test_a_tenants_own_recipients_win_over_a_definitions_list_for_tenant_scope(portfolio_copy):
    add_report(portfolio_copy, "owner.md", TENANT_REPORT.replace("scope: tenant\n",
                                                                 "scope: tenant\nrecipients: [shared@holdings.example]\n"))
    text = portfolio_copy.read_text().replace("recipients: {gm: [gm@jada.example]}",
                                              "recipients: {gm: [gm@jada.example], owner: [owner@jada.example]}", 1)
    assert "owner@jada.example" in text
    portfolio_copy.write_text(text)
    summary, _ = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["owner"], dry_run=True)
    by_tenant = {item["tenant"]: item["recipients"] for item in summary["dry_run"]}
    assert by_tenant["jada"] == ["owner@jada.example"]
    assert by_tenant["quickdumpnow"] == ["shared@holdings.example"]


def test_an_unexpected_error_in_one_report_is_a_failed_outcome_and_the_others_go_out(portfolio_copy, monkeypatch,
                                                                                      tmp_path):
    import flows.render.report as report_module

    real_render = report_module.render_email

    def render_or_break(markdown, subject, **kwargs):
        if subject.startswith("CMO"):
            raise RuntimeError("lxml exploded")
        return real_render(markdown, subject, **kwargs)

    monkeypatch.setattr(report_module, "render_email", render_or_break)
    summary, _ = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["cfo", "cmo"],
                           backend=OutboxBackend(tmp_path))
    assert [item["report"] for item in summary["sent"]] == ["cfo"]
    [failure] = summary["failed"]
    assert failure["report"] == "cmo" and failure["reason"] == "unexpected error: RuntimeError: lxml exploded"


def test_every_source_file_is_read_once_per_run(tmp_path):
    """Counted with an audit hook on every open() in a fresh interpreter, not timed."""
    script = textwrap.dedent(f"""
        import collections, json, sys
        from pathlib import Path
        from flows.core.config import load_config
        from flows.core.period import parse_period
        from flows.orchestrator.run import run_plain

        config = load_config({str(SAMPLE_CONFIG)!r})
        data = str(Path(config.base_dir).resolve() / "data")
        opened = collections.Counter()
        sys.addaudithook(lambda event, args: opened.update([args[0]]) if event == "open" and
                         isinstance(args[0], str) and args[0].startswith(data) else None)
        summary, _ = run_plain(config, parse_period({SAMPLE_PERIOD!r}), dry_run=True)
        print(json.dumps({{"opened": opened, "rendered": len(summary["dry_run"])}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rendered"] == 9
    files = {Path(name).relative_to(SAMPLE_CONFIG.parent / "data").as_posix(): count
             for name, count in report["opened"].items()}
    # every tenant's ledger, chart of accounts, targets, pipeline and marketing exports, and more
    assert {"jada/ledger.csv", "jada/accounts.csv", "dangerouscentaur/ledger.xlsx", "jada/subscribers.csv"} <= set(files)
    assert {name: count for name, count in files.items() if count != 1} == {}
