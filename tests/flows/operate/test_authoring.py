"""Report authoring: a broken definition stays local, `check` finds what a run finds, errors at file:line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from flows.core.config import load_config
from flows.core.period import parse_period as parse
from flows.delivery.outbox import OutboxBackend
from flows.operate.cli import main
from flows.orchestrator.run import run_plain
from flows.plan.definitions import load_definitions
from tests.conftest import PROJECT_ROOT, SAMPLE_PERIOD, SAMPLE_SENT

COO = """\
---
role: coo
title: COO brief
subject: "COO brief {{ period.label }}"
scope: portfolio
metrics:
  - handoffs.open_items
---
# Operations

{% for t in tenants %}
- {{ t.name }}: {{ plural(t.handoffs.open_items, "open item") }} and {{ t.finance.burn_rate }}
{% endfor %}
"""


def reports_of(config_path: Path) -> Path:
    return config_path.parent.parent / "reports"


def check(config_path: Path, capsys) -> tuple[int, str]:
    code = main(["check", "--config", str(config_path), "--period", SAMPLE_PERIOD])
    return code, capsys.readouterr().err


# ---- a broken definition fails only its own report --------------------------------------------------


def test_run_of_chosen_roles_delivers_the_good_one_and_fails_the_broken_one_with_its_problem(portfolio_copy,
                                                                                                tmp_path):
    (reports_of(portfolio_copy) / "coo.md").write_text(COO)  # uses finance.burn_rate without declaring it
    summary, _ = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["coo", "ceo"],
                           backend=OutboxBackend(tmp_path / "out"))
    assert [(s["report"], s["tenant"]) for s in summary["sent"]] == [("ceo", "portfolio")]
    [failure] = summary["failed"]
    # Keyed by role like every other failure (it was the file's path); the file and line are in the reason.
    assert failure["report"] == "coo"
    assert "reports/coo.md:12: uses metric 'finance.burn_rate' but does not declare it" in failure["reason"]


def test_a_broken_definition_of_another_role_does_not_fail_a_run_of_the_chosen_roles(portfolio_copy, tmp_path):
    (reports_of(portfolio_copy) / "coo.md").write_text(COO)
    summary, _ = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["ceo"], dry_run=True)
    assert summary["failed"] == [] and [d["report"] for d in summary["dry_run"]] == ["ceo"]


def test_a_definition_whose_front_matter_does_not_validate_is_still_known_by_its_role(portfolio_copy):
    (reports_of(portfolio_copy) / "coo.md").write_text(COO.replace("scope: portfolio", "scope: everyone"))
    summary, _ = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["coo", "cfo"], dry_run=True)
    assert [d["report"] for d in summary["dry_run"]] == ["cfo"]
    [failure] = summary["failed"]
    assert "coo.md:5: scope:" in failure["reason"]


def test_an_unparseable_file_is_known_by_its_file_name(portfolio_copy):
    (reports_of(portfolio_copy) / "coo.md").write_text("---\nrole: [coo\n---\n")
    summary, _ = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["coo"], dry_run=True)
    [failure] = summary["failed"]
    assert "coo.md:" in failure["reason"] and summary["dry_run"] == []


# ---- check finds what a run finds -----------------------------------------------------------------


def test_check_fails_an_override_for_a_tenant_the_config_does_not_have(portfolio_copy, capsys):
    override = reports_of(portfolio_copy) / "tenants" / "jadda" / "gm.md"
    override.parent.mkdir(parents=True)
    override.write_text((reports_of(portfolio_copy) / "gm.md").read_text())
    code, err = check(portfolio_copy, capsys)
    assert code == 1
    assert "tenants/jadda/gm.md:1: override for unknown tenant 'jadda'" in err
    assert "(did you mean 'jada'?)" in err
    assert err.count("override for unknown tenant") == 1


def test_a_variant_with_its_own_recipients_is_refused_at_load(portfolio_copy):
    reports = reports_of(portfolio_copy)
    text = (reports / "cfo.md").read_text().replace(
        "scope: portfolio\n", "scope: portfolio\nvariant: short\nsplit: 10\nrecipients: [cfo2@holdings.example]\n", 1)
    (reports / "cfo-short.md").write_text(text)
    _, problems = load_definitions(reports)
    [problem] = problems
    assert problem.path.endswith("cfo-short.md") and problem.key == "recipients"
    assert problem.line == text.splitlines().index("recipients: [cfo2@holdings.example]") + 1
    assert "a variant cannot have its own recipients" in problem.message


def test_check_renders_a_variant_no_recipient_is_assigned_to(portfolio_copy, capsys):
    reports = reports_of(portfolio_copy)
    # 1% of one recipient: almost surely nobody gets it, so a run would not render it either.
    text = (reports / "cmo.md").read_text().replace("scope: portfolio\n", "scope: portfolio\nvariant: b\nsplit: 1\n", 1)
    (reports / "cmo-b.md").write_text(text + "\n{{ 1 / 0 }}\n")
    code, err = check(portfolio_copy, capsys)
    assert code == 1
    assert "cmo-b.md" in err and "ZeroDivisionError" in err


def test_check_renders_the_default_when_every_recipient_gets_a_variant(portfolio_copy, capsys):
    reports = reports_of(portfolio_copy)
    cmo = reports / "cmo.md"
    original = cmo.read_text()
    (reports / "cmo-b.md").write_text(original.replace("scope: portfolio\n", "scope: portfolio\nvariant: b\nsplit: 99\n", 1))
    cmo.write_text(original + "\n{{ 1 / 0 }}\n")
    code, err = check(portfolio_copy, capsys)
    assert code == 1 and "reports/cmo.md" in err and "ZeroDivisionError" in err


# ---- run-time errors at file:line, once, with the whole value --------------------------------------


def failures_of(config_path: Path, role: str) -> list[dict]:
    summary, _ = run_plain(load_config(config_path), parse(SAMPLE_PERIOD), roles=[role], dry_run=True)
    return summary["failed"]


def line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_an_undefined_name_in_the_body_is_reported_at_its_line_in_the_file(portfolio_copy):
    cfo = reports_of(portfolio_copy) / "cfo.md"
    cfo.write_text(cfo.read_text().replace("\n## ", "\n{{ no_such_name }}\n\n## ", 1))
    [failure] = failures_of(portfolio_copy, "cfo")
    assert f"reports/cfo.md:{line_of(cfo, '{{ no_such_name }}')}: template error: UndefinedError" in failure["reason"]
    assert "'no_such_name' is undefined" in failure["reason"]


def test_an_invalid_action_due_date_is_quoted_whole_at_its_line(portfolio_copy):
    gm = reports_of(portfolio_copy) / "gm.md"
    gm.write_text(gm.read_text() + '\n{{ action("Call the bank", due="next Friday") }}\n')
    failures = failures_of(portfolio_copy, "gm")
    assert failures and all(f"gm.md:{line_of(gm, 'next Friday')}: template error: ValueError: action(): due must be "
                                "a date" in f["reason"] for f in failures)
    assert all("got 'next Friday'" in f["reason"] for f in failures)


def test_a_failing_check_expression_is_reported_at_its_when_line(portfolio_copy):
    cmo = reports_of(portfolio_copy) / "cmo.md"
    text = cmo.read_text()
    first_when = next(line for line in text.splitlines() if line.strip().startswith("when:"))
    cmo.write_text(text.replace(first_when, first_when.split("when:")[0] + "when: 1 / 0 > 1", 1))
    [failure] = failures_of(portfolio_copy, "cmo")
    assert f"cmo.md:{line_of(cmo, 'when: 1 / 0 > 1')}: check '" in failure["reason"]
    assert "ZeroDivisionError" in failure["reason"]


def test_a_failing_send_if_is_reported_at_its_line(portfolio_copy):
    cfo = reports_of(portfolio_copy) / "cfo.md"
    cfo.write_text(cfo.read_text().replace("scope: portfolio\n", "scope: portfolio\nsend_if: no_such | length\n", 1))
    [failure] = failures_of(portfolio_copy, "cfo")
    assert f"cfo.md:{line_of(cfo, 'send_if:')}: send_if: UndefinedError" in failure["reason"]


def test_check_prints_a_run_time_error_once(portfolio_copy):
    # A real process: pytest's log capture would hide the second copy Python's last-resort handler prints.
    cfo = reports_of(portfolio_copy) / "cfo.md"
    cfo.write_text(cfo.read_text().replace("\n## ", "\n{{ no_such_name }}\n\n## ", 1))
    result = subprocess.run([sys.executable, "-m", "flows.operate.cli", "check", "--config", str(portfolio_copy),
                             "--period", SAMPLE_PERIOD], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 1
    assert result.stderr.count("'no_such_name' is undefined") == 1


def test_a_template_syntax_error_in_the_body_names_the_file_line(portfolio_copy):
    cfo = reports_of(portfolio_copy) / "cfo.md"
    cfo.write_text(cfo.read_text().replace("\n## ", "\n{% if %}\n\n## ", 1))
    _, problems = load_definitions(reports_of(portfolio_copy))
    [problem] = problems
    assert problem.line == line_of(cfo, "{% if %}") and "template syntax error" in problem.message


# ---- truth-testing an unavailable value -------------------------------------------------------------


def test_truth_testing_an_unavailable_metric_fails_naming_it_and_suggesting_is_available(portfolio_copy):
    reports = reports_of(portfolio_copy)
    (reports / "ops.md").write_text(textwrap.dedent("""\
        ---
        role: ops
        title: Ops
        subject: "Ops {{ period.label }}"
        scope: tenant
        metrics: [handoffs.open_items]
        optional_metrics: [marketing.email_list_size]
        ---
        # Ops

        {% if marketing.email_list_size %}List: {{ marketing.email_list_size }}{% else %}No list{% endif %}
        """))
    config = load_config(portfolio_copy)
    summary, rendered = run_plain(config, parse(SAMPLE_PERIOD), roles=["ops"], dry_run=True)
    gathered: dict = {}
    run_plain(config, parse(SAMPLE_PERIOD), roles=["ops"], dry_run=True, gathered=gathered)
    unavailable = {t for t, values in gathered.items() if not isinstance(values["marketing.email_list_size"], int)}
    assert unavailable == {"queenofsandiego", "quickdumpnow", "dangerouscentaur"}
    failed = {f["tenant"]: f["reason"] for f in summary["failed"]}
    assert set(failed) == unavailable  # JADA has a list: its report renders
    assert [d["tenant"] for d in summary["dry_run"]] == ["jada"]
    for reason in failed.values():
        assert "ops.md:11:" in reason and "'marketing.email_list_size' is unavailable" in reason
        assert "`marketing.email_list_size is available`" in reason


# ---- preview: every variant, and the metrics ----------------------------------------------------------


def test_preview_renders_the_default_and_every_variant_and_names_the_metrics(portfolio_copy, tmp_path, capsys):
    reports = reports_of(portfolio_copy)
    text = (reports / "cmo.md").read_text()
    (reports / "cmo-b.md").write_text(text.replace("scope: portfolio\n", "scope: portfolio\nvariant: b\nsplit: 1\n", 1)
                                      .replace("\n## ", "\nVariant B speaking.\n\n## ", 1))
    out = tmp_path / "preview"
    assert main(["preview", "cmo", "--config", str(portfolio_copy), "--period", SAMPLE_PERIOD, "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.glob("*.html")) == ["portfolio-cmo-b.html", "portfolio-cmo.html"]
    assert "Variant B speaking." in (out / "portfolio-cmo-b.md").read_text()
    assert "Variant B speaking." not in (out / "portfolio-cmo.md").read_text()
    assert "reports/cmo.md: metrics marketing." in captured.err and "reports/cmo-b.md: metrics" in captured.err

    only_b = tmp_path / "only-b"
    assert main(["preview", "cmo", "--variant", "b", "--config", str(portfolio_copy), "--period", SAMPLE_PERIOD,
                 "-o", str(only_b)]) == 0
    assert [p.name for p in only_b.glob("*.html")] == ["portfolio-cmo-b.html"]
    only_default = tmp_path / "only-default"
    assert main(["preview", "cmo", "--variant", "default", "--config", str(portfolio_copy), "--period",
                 SAMPLE_PERIOD, "-o", str(only_default)]) == 0
    assert [p.name for p in only_default.glob("*.html")] == ["portfolio-cmo.html"]


def test_preview_of_an_unknown_variant_suggests_the_close_one(portfolio_copy, capsys):
    reports = reports_of(portfolio_copy)
    text = (reports / "cmo.md").read_text()
    (reports / "cmo-b.md").write_text(text.replace("scope: portfolio\n", "scope: portfolio\nvariant: bold\nsplit: 1\n", 1))
    assert main(["preview", "cmo", "--variant", "bodl", "--config", str(portfolio_copy)]) == 1
    assert "unknown variant of 'cmo' 'bodl' (did you mean 'bold'?)" in capsys.readouterr().err


def test_check_lists_unavailable_metrics_per_report(portfolio_copy, capsys):
    assert main(["check", "--config", str(portfolio_copy), "--period", SAMPLE_PERIOD]) == 0
    out = capsys.readouterr().out
    assert "reports/cto.md: metrics " in out
    cmo_section = out[out.index("reports/cmo.md: metrics"):]
    assert ("\n  unavailable: marketing.email_list_size for queenofsandiego, quickdumpnow, dangerouscentaur: "
            "sources.marketing.subscribers is not set") in cmo_section.split("\nreports/")[0]


# ---- checks carry owner, fix and due; agenda(); aggregate helpers -----------------------------------

AGENDA_REPORT = """\
---
role: ops
title: Ops
subject: "Ops {{ period.label }}"
scope: portfolio
metrics: [handoffs.open_items, handoffs.blockers, finance.burn_rate, sales.open_deal_count]
checks:
  - id: burning
    when: finance.burn_rate > 0
    severity: medium
    message: "{{ tenant.name }} burns cash"
    owner: cfo
    fix: Cut the burn
    due_in_days: 3
  - id: deals
    when: sales.open_deal_count >= 0
    severity: critical
    message: "{{ tenant.name }} has {{ sales.open_deal_count }} deals"
---
# Ops

{% for t in tenants %}
## {{ t.name }}

{{ agenda(t.checks, todos(t.handoffs.blockers, "Unblock: {text}", priority="high", due_in_days=14)) }}

{% endfor %}
Burn {{ money(total(tenants, "finance.burn_rate")) }}, {{ count(tenants, "handoffs.open_items") }} open items.
"""


def test_agenda_lists_fired_checks_with_their_fix_owner_and_due_date_most_urgent_first(portfolio_copy):
    reports = reports_of(portfolio_copy)
    (reports / "ops.md").write_text(AGENDA_REPORT)
    summary, rendered = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["ops"], dry_run=True,
                                  generated_at=SAMPLE_SENT)
    assert summary["failed"] == []
    markdown = rendered["portfolio-ops"].markdown
    section = markdown.split("## JADA")[1].split("## ")[0]
    lines = [line for line in section.splitlines() if line.startswith("- [ ]")]
    # Sent Mon Nov 23 (period 2026-W47 ended Nov 22): critical defaults to 7 days, the check's own
    # due_in_days is 3, the blockers are due in 14.
    assert lines[0].startswith("- [ ] JADA has ") and lines[0].endswith("deals — Operations, critical priority, due Nov 30, 2026")
    assert [line.split(" — ")[1] for line in lines[1:-1]] == ["Operations, high priority, due Dec 7, 2026"] * (len(lines) - 2)
    assert all(line.startswith("- [ ] Unblock: ") for line in lines[1:-1])
    assert lines[-1] == "- [ ] Cut the burn — CFO, medium priority, due Nov 26, 2026"
    actions = [a for a in summary["actions"] if a["text"] == "Cut the burn"]
    assert {a["owner"] for a in actions} == {"cfo"} and {a["due"] for a in actions} == {"2026-11-26"}
    gathered: dict = {}
    run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["ops"], dry_run=True, gathered=gathered)
    burn = sum(values["finance.burn_rate"] for values in gathered.values())
    items = sum(len(values["handoffs.open_items"]) for values in gathered.values())
    assert f"{items} open items." in markdown and burn != 0


def test_total_of_an_undeclared_metric_is_a_load_error_at_its_line(tmp_path):
    (tmp_path / "ops.md").write_text(AGENDA_REPORT.replace('total(tenants, "finance.burn_rate")',
                                                           'total(tenants, "finance.cash_on_hand")'))
    _, problems = load_definitions(tmp_path)
    [problem] = problems
    assert problem.line == AGENDA_REPORT.splitlines().index(
        next(line for line in AGENDA_REPORT.splitlines() if line.startswith("Burn "))) + 1
    assert "uses metric 'finance.cash_on_hand' but does not declare it" in problem.message


def test_total_of_a_list_and_count_of_a_number_are_errors_that_say_which_helper_fits(portfolio_copy):
    reports = reports_of(portfolio_copy)
    (reports / "ops.md").write_text(AGENDA_REPORT.replace('total(tenants, "finance.burn_rate")',
                                                          'total(tenants, "handoffs.open_items")'))
    [failure] = failures_of(portfolio_copy, "ops")
    assert "total(): 'handoffs.open_items' is not a number" in failure["reason"]
    assert "count(rows, path) counts list items" in failure["reason"]
    assert f"ops.md:{AGENDA_REPORT.count(chr(10))}:" in failure["reason"]


def test_check_owner_must_be_a_role_and_due_in_days_a_whole_number(tmp_path):
    (tmp_path / "ops.md").write_text(AGENDA_REPORT.replace("owner: cfo", "owner: The CFO")
                                     .replace("due_in_days: 3", "due_in_days: soon"))
    _, problems = load_definitions(tmp_path)
    assert {(p.line, p.key) for p in problems} == {(12, "checks[0].owner"), (14, "checks[0].due_in_days")}


def test_the_shipped_ceo_brief_has_no_lookup_dictionaries_or_namespace_sums():
    from tests.conftest import PROJECT_ROOT

    text = (PROJECT_ROOT / "reports" / "ceo.md").read_text()
    body = text.split("\n---\n", 1)[1]
    assert "namespace(" not in body and "= {" not in body
    assert "owner:" in text and "fix:" in text.split("\n---\n", 1)[0]


def test_check_renders_a_template_whose_send_if_is_false_and_finds_its_error(portfolio_copy, capsys):
    cfo = reports_of(portfolio_copy) / "cfo.md"
    cfo.write_text(cfo.read_text().replace("scope: portfolio\n", "scope: portfolio\nsend_if: checks | length > 1000\n", 1)
                   .replace("\n## ", "\n{{ no_such_name }}\n\n## ", 1))
    summary, _ = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["cfo"], dry_run=True)
    assert summary["failed"] == [] and [s["report"] for s in summary["skipped"]] == ["cfo"]  # a run skips it
    code, err = check(portfolio_copy, capsys)
    assert code == 1 and f"cfo.md:{line_of(cfo, '{{ no_such_name }}')}: template error" in err


def test_a_broken_tenant_override_fails_that_tenant_instead_of_sending_it_the_default(portfolio_copy):
    override = reports_of(portfolio_copy) / "tenants" / "jada" / "gm.md"
    override.parent.mkdir(parents=True)
    override.write_text((reports_of(portfolio_copy) / "gm.md").read_text().replace("title:", "titel:", 1))
    summary, _ = run_plain(load_config(portfolio_copy), parse(SAMPLE_PERIOD), roles=["gm"], dry_run=True)
    assert "jada" not in {d["tenant"] for d in summary["dry_run"]}
    assert {d["tenant"] for d in summary["dry_run"]} | {f["tenant"] for f in summary["failed"]} >= {
        "queenofsandiego", "dangerouscentaur"}
    assert any("tenants/jada/gm.md" in f["reason"] and "titel" in f["reason"] for f in summary["failed"])


def test_an_error_in_the_subject_is_reported_at_the_subject_line(portfolio_copy):
    cmo = reports_of(portfolio_copy) / "cmo.md"
    lines = cmo.read_text().splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if line.startswith("subject:"))
    lines[number] = 'subject: "Marketing {{ 1 / 0 }}"\n'
    cmo.write_text("".join(lines))
    [failure] = failures_of(portfolio_copy, "cmo")
    assert f"cmo.md:{number + 1}: template error: ZeroDivisionError" in failure["reason"]
