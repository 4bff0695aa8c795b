"""Templates are sandboxed and strict, and data values can never change an email's structure."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from jinja2 import UndefinedError
from jinja2.exceptions import SecurityError

from flows.render import render_email
from flows.templating import environment, escape_markdown, money, months, number, percent, table
from sources.registry import Unavailable

INJECTIONS = [
    "<script>alert('x')</script>",
    "[click me](http://evil.example/phish)",
    "| pipes | in | cells |",
    "# heading from data",
    "**bold from data**",
    "![img](http://evil.example/x.png)",
    "line one\n\n## second block",
    "1. looks like a list",
    "- also a list",
    "&lt;b&gt;entity&lt;/b&gt;",
    "<http://evil.example/autolink>",
]


def content_of(html: str) -> str:
    """The report body inside the layout (the layout's own table cells are not the report's)."""
    from lxml import html as lxml_html

    cell = lxml_html.fromstring(html).find_class("content")[0]
    return "".join(lxml_html.tostring(child, encoding="unicode") for child in cell)


def render_markdown(source: str, **context) -> str:
    return environment().from_string(source).render(**context)


@pytest.mark.parametrize("value", INJECTIONS)
def test_a_data_value_renders_as_literal_text_in_html(value):
    markdown = render_markdown("Memo: {{ memo }}\n\n| Item | Memo |\n|---|---|\n| one | {{ memo }} |\n", memo=value)
    html = render_email(markdown, "subject", title="t", footer="f").html
    body = content_of(html)
    assert "<script" not in body
    assert "<a " not in body and "<img" not in body
    assert "<strong>" not in body and "<h1" not in body and "<h2" not in body
    assert "<ol" not in body and "<ul" not in body
    # The table still has exactly one body row of exactly two cells.
    assert len(re.findall(r"<td\b", body)) == 2
    flattened = " ".join(value.split())
    visible = re.sub(r"<[^>]+>", "", body).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    visible = visible.replace("&quot;", '"').replace("&#x27;", "'").replace("&#39;", "'")
    assert flattened in visible


def test_a_data_value_cannot_add_a_table_column_through_the_table_helper():
    rows = [{"name": "a | b | c", "amount": Decimal("5")}]
    markdown = table(rows, columns={"name": "Name", "amount": "Amount"}, formats={"amount": "money"})
    html = content_of(render_email(markdown, "s", title="t", footer="f").html)
    assert len(re.findall(r"<td\b", html)) == 2
    assert "a | b | c" in html


@pytest.mark.parametrize("payload", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ money.__globals__ }}",
])
def test_sandbox_escape_attempts_fail_instead_of_reaching_python_internals(payload):
    with pytest.raises((SecurityError, UndefinedError)):
        render_markdown(payload)


def test_undefined_names_are_errors_not_empty_strings():
    with pytest.raises(UndefinedError):
        render_markdown("{{ finance.no_such_metric }}", finance={})


def test_format_helpers():
    assert money(Decimal("7812.4")) == "$7,812"
    assert money(Decimal("-12.5"), cents=True) == "-$12.50"
    assert percent(0.125, 1) == "12.5%"
    assert number(3676) == "3,676"
    assert months(float("inf")).startswith("no burn")
    assert months(14.25) == "14.2 months"  # Decimal's default rounding, half to even
    assert money(Unavailable("finance.burn_rate", "ledger missing")) == "unavailable (ledger missing)"


def test_table_helper_formats_and_rejects_unknown_columns():
    rows = [{"month": "2026-10", "revenue": Decimal("1234.5")}]
    text = table(rows, columns=["month", "revenue"], formats={"revenue": "money"})
    assert text.splitlines() == ["| Month | Revenue |", "|---|---:|", "| 2026-10 | $1,234 |"]
    with pytest.raises(KeyError, match="no column 'expenses'"):
        table(rows, columns=["expenses"])
    assert "Nothing to show" in table([], columns=["month"])


def test_escaping_keeps_ordinary_text_readable():
    assert escape_markdown("10.6 months") == "10.6 months"
    assert escape_markdown("-$387") == "-$387"
    assert escape_markdown(None) == "—"
