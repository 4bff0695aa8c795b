"""The smaller items of case 10 of the second hardening pass, each as it was met: a limit error in a check's
``when`` or in ``send_if`` had no line; a Latin-1 report file got a byte position; raw HTML in a template was
sent as visible text without a word from ``check``; an XLSX formula with no saved value read as ``value ''``.
(Definition failures keyed by role: tests/flows/operate/test_authoring.py; the crashed run's period:
tests/flows/orchestrator/test_alerts.py.)"""

from __future__ import annotations

import textwrap

import pytest

from flows.core.config import load_config
from flows.core.errors import ConfigurationError, SourceError
from flows.core.period import parse_period
from flows.operate.cli import main
from flows.orchestrator.run import run_plain
from flows.plan.definitions import load_definitions
from sources.tabular import BadRowPolicy, read_rows
from tests.conftest import SAMPLE_PERIOD

BRIEF = """\
---
role: brief
title: Brief
subject: Brief {{ period.label }}
scope: tenant
metrics: [finance.cash_on_hand]
checks:
  - id: cash
    severity: high
    message: Low cash.
    when: {when}
send_if: "{send_if}"
---
Cash {{{{ money(finance.cash_on_hand) }}}}
"""


def brief(portfolio_copy, when: str = "finance.cash_on_hand < 0", send_if: str = "true") -> None:
    reports = portfolio_copy.parent.parent / "reports"
    for path in reports.glob("*.md"):
        path.unlink()
    (reports / "brief.md").write_text(BRIEF.format(when=when, send_if=send_if), encoding="utf-8")


def failures(portfolio_copy) -> list[str]:
    summary, _ = run_plain(load_config(portfolio_copy), parse_period(SAMPLE_PERIOD), tenants=["jada"], dry_run=True)
    return [item["reason"] for item in summary["failed"]]


def test_a_limit_hit_in_a_checks_when_names_the_file_line_and_check(portfolio_copy):
    brief(portfolio_copy, when='"9**(9**9) > 0"')
    [reason] = failures(portfolio_copy)
    assert "reports/brief.md:11: check 'cash' for tenant 'jada': 9 ** 387420489 is too large" in reason
    assert reason.count("brief.md") == 1


def test_a_limit_hit_in_send_if_names_the_file_and_line(portfolio_copy):
    brief(portfolio_copy, send_if="(2**2000) * (2**2000) > 0")
    [reason] = failures(portfolio_copy)
    assert "reports/brief.md:12: send_if: " in reason and "is too large" in reason
    assert reason.count("brief.md") == 1


def test_a_latin1_report_file_is_refused_with_its_line_and_column(tmp_path):
    text = BRIEF.format(when="finance.cash_on_hand < 0", send_if="true").replace("title: Brief", "title: Café brief")
    (tmp_path / "brief.md").write_bytes(text.encode("latin-1"))
    _, [problem] = load_definitions(tmp_path)
    assert str(problem).endswith("brief.md:3: the file is not UTF-8: byte 0xe9 at line 3, column 11 (saved as "
                                 "Latin-1 or Windows-1252?); save it as UTF-8")


def test_a_latin1_config_is_refused_with_its_line(portfolio_copy):
    text = portfolio_copy.read_text(encoding="utf-8").replace("name: Sample Holdings", "name: Sample Holdings Café")
    portfolio_copy.write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigurationError, match=r"portfolio.yaml:4: the file is not UTF-8: byte 0xe9 at line 4"):
        load_config(portfolio_copy)


def test_raw_html_in_a_template_gets_a_check_warning_with_its_line(portfolio_copy, capsys):
    brief(portfolio_copy)
    path = portfolio_copy.parent.parent / "reports" / "brief.md"
    path.write_text(path.read_text() + textwrap.dedent("""\
        <b>Cash</b> is {{ "<i>low</i>" }}.

        See <https://holdings.example/cash> or `<code>`, and {# <ignored> #} plain text.
        <!-- a comment -->
        """), encoding="utf-8")
    assert main(["check", "--config", str(portfolio_copy), "--period", SAMPLE_PERIOD]) == 0  # a warning, not a failure
    warnings = [line.split("reports/", 1)[1] for line in capsys.readouterr().err.splitlines() if "raw HTML" in line]
    assert warnings == [
        f"brief.md:{line}: raw HTML {tag!r} is shown as text in the email (raw HTML in Markdown is off): write it "
        "in Markdown (**bold**, a blank line for a paragraph) or with a component"
        for line, tag in ((15, "<b>"), (18, "<!--"))]


def test_an_xlsx_formula_with_no_saved_value_says_it_is_a_formula(tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["date", "account", "category", "amount", "memo"])
    sheet.append(["2026-11-02", "6100 Fuel", "Fuel", 120.5, "Fuel"])
    sheet.append(["2026-11-03", "6100 Fuel", "Fuel", "=D2*2", ""])  # openpyxl saves the formula, no value
    workbook.save(tmp_path / "books.xlsx")
    rows = list(read_rows(tmp_path / "books.xlsx", ["date", "amount"]))
    assert rows[1][1]["amount"] == "=D2*2" and rows[1][1]["memo"] == ""  # an empty memo stays empty
    from sources.ledger.books import read_ledger

    with pytest.raises(SourceError) as refused:
        read_ledger(tmp_path / "books.xlsx", None, None, BadRowPolicy({}, "ledger", "acme"))
    assert "books.xlsx:3: column 'amount': a formula with no saved value" in str(refused.value)
    assert "(value '=D2*2')" in str(refused.value)
