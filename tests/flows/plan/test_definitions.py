"""Report definitions: every error kind names file:line and key; all files' errors come together."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flows.core.errors import DefinitionError
from flows.plan.definitions import load_definitions, load_definitions_or_raise
from tests.conftest import PROJECT_ROOT


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


VALID = """
---
role: cfo
title: CFO brief
subject: "CFO {{ period.label }}"
scope: portfolio
metrics:
  - finance.burn_rate
  - finance.cash_on_hand
---
{% for t in tenants %}{{ t.name }}: {{ money(t.finance.burn_rate) }}{% endfor %}
"""


def messages(folder: Path) -> list[str]:
    _, problems = load_definitions(folder)
    return [str(p) for p in problems]


def test_sample_reports_are_valid():
    definitions, problems = load_definitions(PROJECT_ROOT / "reports")
    assert problems == []
    assert {d.role for d in definitions} >= {"ceo", "cto", "cfo", "cmo", "accounting"}


def test_unknown_metric_names_file_line_index_and_suggests_the_close_one(tmp_path):
    write(tmp_path, "cfo.md", VALID.replace("  - finance.cash_on_hand", "  - finance.cash_on_hand\n  - finance.burnrate"))
    [message] = messages(tmp_path)
    assert message.endswith("cfo.md:9: metrics[2]: unknown metric 'finance.burnrate' "
                            "(did you mean 'finance.burn_rate'?)")


def test_unknown_front_matter_key_is_rejected_with_its_line_and_a_suggestion(tmp_path):
    write(tmp_path, "cfo.md", VALID.replace("scope: portfolio", "scope: portfolio\nsubjet: typo"))
    [message] = messages(tmp_path)
    assert "cfo.md:6: subjet: unknown key 'subjet' (did you mean 'subject'?)" in message


def test_wrong_type_is_rejected_with_its_line(tmp_path):
    write(tmp_path, "cfo.md", VALID.replace("scope: portfolio", "scope: weekly"))
    [message] = messages(tmp_path)
    assert "cfo.md:5: scope:" in message and "'portfolio' or 'tenant'" in message


def test_missing_required_key_is_reported(tmp_path):
    write(tmp_path, "cfo.md", VALID.replace("title: CFO brief\n", ""))
    [message] = messages(tmp_path)
    assert "cfo.md" in message and "title: required key is missing" in message


def test_yaml_syntax_error_shows_the_line(tmp_path):
    write(tmp_path, "cfo.md", VALID.replace("scope: portfolio", "scope: [portfolio"))
    [message] = messages(tmp_path)
    assert "cfo.md:" in message and "YAML syntax error" in message
    line = int(message.split("cfo.md:")[1].split(":")[0])
    assert 5 <= line <= 7  # the parser notices at the unclosed flow sequence or just after it


def test_duplicate_key_is_an_error_not_last_one_wins(tmp_path):
    write(tmp_path, "cfo.md", VALID.replace("scope: portfolio", "scope: portfolio\ntitle: Second title"))
    [message] = messages(tmp_path)
    assert "cfo.md:6: title: duplicate key (first defined on line 3)" in message


def test_template_using_an_undeclared_metric_is_an_error_at_its_template_line(tmp_path):
    write(tmp_path, "cfo.md", VALID + "\nRunway: {% for t in tenants %}{{ t.finance.runway_months }}{% endfor %}\n")
    [message] = messages(tmp_path)
    assert message.endswith("cfo.md:12: uses metric 'finance.runway_months' but does not declare it: "
                            "add it to metrics")


def test_template_syntax_error_names_the_file_line(tmp_path):
    write(tmp_path, "cfo.md", VALID + "\n{% for t in tenants %}\n")
    [message] = messages(tmp_path)
    assert "cfo.md:" in message and "template syntax error" in message


def test_check_expression_is_validated_against_declared_metrics(tmp_path):
    text = VALID.replace("---\n{%", "checks:\n  - id: low-runway\n    when: finance.runway_months < 3\n"
                         "    severity: high\n    message: short\n---\n{%")
    write(tmp_path, "cfo.md", text)
    [message] = messages(tmp_path)
    assert "cfo.md:11: checks[0].when: uses metric 'finance.runway_months' but does not declare it" in message


def test_missing_front_matter_is_explained(tmp_path):
    write(tmp_path, "notes.md", "# Just a heading\n")
    [message] = messages(tmp_path)
    assert message.startswith(str(tmp_path / "notes.md") + ":1: missing YAML front matter")


def test_duplicate_role_across_files_names_both(tmp_path):
    write(tmp_path, "a.md", VALID)
    write(tmp_path, "b.md", VALID)
    [message] = messages(tmp_path)
    assert "b.md:2: role: role 'cfo' is already defined in" in message and "a.md" in message


def test_errors_from_every_file_are_reported_together(tmp_path):
    write(tmp_path, "a.md", VALID.replace("finance.cash_on_hand", "finance.cash"))
    write(tmp_path, "b.md", VALID.replace("role: cfo", "role: ceo").replace("scope: portfolio", "scope: nope"))
    write(tmp_path, "c.md", VALID.replace("role: cfo", "role: cmo"))
    with pytest.raises(DefinitionError) as raised:
        load_definitions_or_raise(tmp_path)
    problems = raised.value.problems
    assert {Path(p.path).name for p in problems} == {"a.md", "b.md"}
    assert len(str(raised.value).splitlines()) == 2


def test_bad_recipient_address_is_rejected(tmp_path):
    write(tmp_path, "cfo.md", VALID.replace("scope: portfolio", "scope: portfolio\nrecipients: [not-an-address]"))
    [message] = messages(tmp_path)
    assert "cfo.md:6: recipients[0]: 'not-an-address' is not an email address" in message
