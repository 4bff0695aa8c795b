"""Templates are sandboxed and strict, and data values can never change an email's structure."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from jinja2 import UndefinedError
from jinja2.exceptions import SecurityError

from flows.render.email import render_email
from flows.templating.environments import environment
from flows.templating.escape import escape_markdown
from flows.templating.formatters import money, months, number, percent
from flows.templating.tables import table
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
    assert money(Unavailable("finance.burn_rate", "ledger missing")) == "not available (ledger missing)"


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


# ---- summary-first helpers and plain language -----------------------------------------------------


def test_top_ranks_by_a_dotted_path_and_remembers_how_many_were_left_out():
    from flows.templating.tables import more, top

    rows = [{"name": n, "finance": {"runway": r}} for n, r in
            (("A", 9.0), ("B", Unavailable("finance.runway", "x")), ("C", 2.5), ("D", 4.0), ("E", None))]
    shortest = top(rows, 2, by="finance.runway", reverse=False)
    assert [r["name"] for r in shortest] == ["C", "D"]
    assert (shortest.more, shortest.total) == (3, 5)
    # Missing and unavailable values rank last whichever the direction.
    assert [r["name"] for r in top(rows, 5, by="finance.runway")] == ["A", "D", "C", "B", "E"]
    assert more(shortest, "more entities") == "and 3 more entities"
    assert more(top(rows, 10)) == ""
    with pytest.raises(ValueError, match="n must be"):
        top(rows, -1)


def test_table_ends_with_an_and_n_more_row_when_rows_were_left_out():
    from flows.templating.tables import top

    rows = [{"entity": f"E{i}", "burn": i * 100} for i in range(25)]
    markdown = table(top(rows, 3, by="burn"), columns={"entity": "Entity", "burn": "Burn"}, formats={"burn": "money"},
                     more_text="more entities")
    lines = markdown.splitlines()
    assert lines[2:] == ["| E24 | $2,400 |", "| E23 | $2,300 |", "| E22 | $2,200 |", "| *and 22 more entities* |  |"]
    limited = table(rows, columns=["entity"], limit=20)
    assert limited.splitlines()[-1] == "| *and 5 more* |" and len(limited.splitlines()) == 2 + 20 + 1
    assert "more" not in table(rows[:2], columns=["entity"], limit=20)


def test_plural_never_writes_s_in_brackets():
    from flows.templating.tables import plural

    assert plural(1, "issue") == "1 issue"
    assert plural(3, "issue") == "3 issues"
    assert plural(1, "entry", "entries") == "1 entry" and plural(0, "entry", "entries") == "0 entries"
    assert plural([1, 2], "row") == "2 rows"
    assert plural(1200, "row") == "1,200 rows"


def test_values_never_show_python_booleans_or_negative_zero():
    assert render_markdown("{{ flag }} / {{ table(rows) }}", flag=True, rows=[{"flagged": False}]).startswith("yes / ")
    assert "| no |" in render_markdown("{{ table(rows) }}", rows=[{"flagged": False}])
    assert number(-0.2) == "0" and number(-0.04, 1) == "0.0" and number(-1.5) == "-2"
    assert percent(-0.001) == "0%" and money(-0.4) == "$0" and money(-12.6) == "-$13"


def test_unavailable_figures_are_explained_in_plain_words_without_keys_or_ids():
    technical = [
        "sources.ledger.unit_economics is not set",
        "source 'aws' is not configured for tenant 'jada'",
        "source 'ledger' failed: OSError: [Errno 2] No such file or directory: 'data/jada/ledger.csv'",
        "chart of accounts: data/jada/accounts.csv:14: unknown type 'asset'",
        "no source provides this metric (did you mean marketing.website_sessions?)",
    ]
    for reason in technical:
        text = money(Unavailable("finance.burn_rate", reason))
        assert text.startswith("not available"), text
        for fragment in ("sources.", "'", "jada", ".csv", "Error", "_", "finance.burn_rate"):
            assert fragment not in text, (reason, text)
    assert money(Unavailable("finance.burn_rate", "sources.ledger.rules is not set")) == "not available (not set up yet)"
    assert number(Unavailable("x.y", "the ledger has no entries for 2026-10")) == \
        "not available (the books do not cover the whole period yet)"


# ---- helpers added for reports as documents -------------------------------------------------------


def test_totals_by_works_a_ratio_from_the_summed_fields_never_averaging_the_ratios():
    from flows.templating.tables import totals_by

    tenants = [{"c": {"rows": [{"channel": "Print", "spend": 100, "customers": 1},
                               {"channel": "Web", "spend": 30, "customers": 0}]}},
               {"c": {"rows": [{"channel": "Print", "spend": 50, "customers": 2}]}}]
    rows = totals_by(tenants, "c.rows", "channel", ["spend", "customers"], ratios={"cac": ["spend", "customers"]})
    # Print: (100 + 50) / (1 + 2) = 50.00, where the average of the entities' CACs would be (100 + 25) / 2.
    assert [(r["channel"], r["cac"]) for r in rows] == [("Print", Decimal("50.00")), ("Web", None)]


def test_count_and_list_columns_and_a_count_columns_total():
    from flows.templating.tables import ranked_table

    tenants = [{"name": "A", "domains": ["a.example", "b.example"], "aws": {"fns": ["f1", "f2", "f3"]}},
               {"name": "B", "domains": [], "aws": {"fns": Unavailable("aws.fns", "denied")}}]
    text = ranked_table(tenants, "name", {"name": "Entity", "domains": "Sites", "aws.fns": "Lambda"},
                        formats={"domains": "list", "aws.fns": "count"}, reverse=False, total=True)
    assert "| A | a.example, b.example | 3 |" in text
    assert "| B | — | n/a |" in text
    assert text.splitlines()[-1] == "| Total |  | 3 |"  # B's unreadable inventory is not counted as 0
    assert text.splitlines()[1] == "|---|---|---:|"


def test_check_list_names_the_severity_and_how_many_more():
    from flows.templating.agenda import check_list

    checks = [{"severity": "high", "message": "JADA has *no* listing."},
              {"severity": "medium", "message": "B is missing."}, {"severity": "low", "message": "C."}]
    assert check_list(checks, 2, more_text="more gap|more gaps", where="below") == (
        "- **HIGH** JADA has \\*no\\* listing.\n- **MEDIUM** B is missing.\n- *and 1 more gap below*")
    assert check_list([], empty="No gaps.") == "No gaps."


def test_aside_footnote_and_lead_escape_the_words_they_wrap():
    from flows.templating.escape import aside, footnote, lead

    assert aside("Leaves out *A*") == "*Leaves out \\*A\\**"
    assert footnote("Leaves out rows of A|B") == "\\* Leaves out rows of A\\|B"
    assert lead("Out of date:", "510 days old.") == "**Out of date:** 510 days old."
    assert aside("") == ""


def test_decisions_record_only_the_ones_shown_and_name_their_entity_in_a_portfolio_brief():
    from flows.templating.agenda import ActionCollector

    checks = [{"severity": sev, "fix": f"Fix {n}", "message": f"{name}: {n}", "tenant_name": name, "tenant": name.lower(),
               "owner": "cfo", "due": "2026-12-10"}
              for n, (sev, name) in enumerate([("high", "JADA"), ("critical", "QDN"), ("low", "JADA"), ("medium", "QDN")])]
    portfolio = ActionCollector(portfolio=True)
    text = portfolio.decisions(checks, n=2, rest="below")
    assert text.splitlines()[0].startswith("- [ ] QDN: Fix 1 — CFO, critical priority, due Dec 10, 2026")
    assert text.splitlines()[1].startswith("- [ ] JADA: Fix 0 — CFO, high priority")
    assert text.splitlines()[2] == "- *and 2 more below*"
    # The two not shown are not handed off; each recorded action is the item itself, its entity its tenant.
    assert [(a.text, a.tenant) for a in portfolio.actions] == [("Fix 1", "qdn"), ("Fix 0", "jada")]
    # Listed again further down (an entity's agenda), an item is still one action.
    portfolio.decisions(checks[:1], n=1, entity_names=False)
    assert len(portfolio.actions) == 2
    one = ActionCollector()
    one.decisions(checks[:1], n=3)
    assert [a.text for a in one.actions] == ["Fix 0"]  # a one-entity brief does not repeat its name


def test_how_many_counts_available_figures_past_a_threshold():
    from flows.templating.tables import how_many

    tenants = [{"f": {"runway": 4.6}}, {"f": {"runway": 7.5}}, {"f": {"runway": Unavailable("f.runway", "x")}},
               {"f": {"runway": 5.99}}]
    assert how_many(tenants, "f.runway", below=6) == 2  # the unavailable one is not counted as under
    assert how_many(tenants, "f.runway", above=7) == 1
    with pytest.raises(ValueError, match="give one of below= or above="):
        how_many(tenants, "f.runway")
