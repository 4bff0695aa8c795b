"""A list written from a pattern (``line=``) reads as the report's prose: each value shown in its format and
escaped, optional phrases left out when there is nothing to say, and a wrong field or format named."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from flows.templating.agenda import check_list, checks_by_id
from flows.templating.formatters import percent_change
from flows.templating.lines import fill_line
from flows.templating.tables import bullet_list, names, top
from sources.registry import Unavailable

FUNCTIONS = [
    {"name": "jada-nightly-report", "entity": "JADA", "p95_duration_ms": 48200, "invocations": 7, "errors": 0,
     "throttles": 0},
    {"name": "qdn_quote", "entity": "QuickDumpNow", "p95_duration_ms": 2400, "invocations": 1, "errors": 9,
     "throttles": 14},
    {"name": "dc-resize", "entity": "DangerousCentaur", "p95_duration_ms": 850, "invocations": 260, "errors": 4,
     "throttles": 0},
]
LINE = "{name} ({entity}): **{p95_duration_ms:duration_ms}**; {invocations:plural:call}, {errors:plural:error}" \
       "{throttles:number?, # turned away}"


def test_each_row_is_written_in_its_formats_with_optional_phrases_only_when_there_is_something():
    listed = bullet_list(top(FUNCTIONS, 2, by="p95_duration_ms"), line=LINE, more_text="more function|more functions")
    assert listed.splitlines() == [
        "- jada-nightly-report (JADA): **48.2 s**; 7 calls, 0 errors",
        # The underscore of the name is escaped: data never becomes Markdown; the pattern's ** stays bold.
        "- qdn\\_quote (QuickDumpNow): **2.4 s**; 1 call, 9 errors, 14 turned away",
        "- *and 1 more function*"]
    # When the sentence before the list already counts the rows, no "and 1 more" line.
    assert len(bullet_list(top(FUNCTIONS, 2), line=LINE, more_text=None).splitlines()) == 2
    assert bullet_list([], line=LINE, empty="No Lambda function activity was readable.") == \
        "*No Lambda function activity was readable.*"
    assert bullet_list([], line=LINE, empty="") == ""


def test_inline_lists_join_with_and_or_a_separator_and_say_how_many_were_left_out():
    costs = [{"name": "JADA", "cost": Decimal("67.40")}, {"name": "B", "cost": Decimal("12")},
             {"name": "C", "cost": Decimal("3.5")}, {"name": "D", "cost": Decimal("1")}]
    assert names(top(costs, 3, by="cost"), line="{name} **{cost:money_cents}**", more_text="more entity|more entities") \
        == "JADA **$67.40**, B **$12.00**, C **$3.50** and 1 more entity"
    assert names(costs[:2], line="{name} {cost:money}") == "JADA $67 and B $12"
    assert names(top(costs, 2), line="{name}", sep="; ", more_text="more item|more items", where="in the GM briefs") \
        == "JADA; B; and 2 more items in the GM briefs"
    # Without line= a list keeps its old form, plain text for the template to escape.
    assert names(["A", "B", "C"]) == "A, B and C"


def test_a_value_at_the_start_of_a_line_cannot_start_a_list_but_one_after_text_reads_as_written():
    assert fill_line({"order": "1. Sailo (live)"}, "{order}") == "1\\. Sailo (live)"
    assert fill_line({"order": "1. Sailo (live)"}, "OTA: {order}") == "OTA: 1. Sailo (live)"
    assert fill_line({"order": "- Sailo"}, " {order}") == " \\- Sailo"  # a space is not text before it
    # Inline or not, a value never carries Markdown.
    assert fill_line({"order": "[x](http://evil.example) **b**"}, "OTA: {order}") == \
        "OTA: \\[x\\](http://evil.example) \\*\\*b\\*\\*"


def test_paths_list_rows_counts_digits_and_a_missing_value():
    tenant = {"name": "JADA", "aws": {"security_finding_counts": {"critical": 1, "high": 0, "medium": 2},
                                       "cost_by_service_last_month": [{"service": "AWS WAF", "amount": Decimal("6")}],
                                       "none_yet": []},
              "share": 0.0312, "when": dt.date(2026, 12, 31)}
    assert fill_line(tenant, "{name}: {aws.security_finding_counts:counts}; {aws.cost_by_service_last_month.0.service} "
                             "{aws.cost_by_service_last_month.0.amount:money_cents}; {share:percent:1}; {when:date}") \
        == "JADA: 1 critical, 2 medium; AWS WAF $6.00; 3.1%; Dec 31, 2026"
    # The first row of an empty list is nothing, shown as a dash, or left out with its optional phrase.
    assert fill_line(tenant, "top: {aws.none_yet.0.service}") == "top: —"
    assert fill_line(tenant, "JADA{aws.none_yet.0.service:text?, top #}.") == "JADA."
    missing = Unavailable("aws.last_month_cost", "Cost Explorer: AccessDenied", "AWS cost not readable")
    assert "not available" in fill_line({"cost": missing}, "{cost:money}")
    assert fill_line({"cost": missing}, "bill{cost:money?: #}") == "bill"
    # An optional phrase keeps its words and spaces as written, like the rest of the pattern.
    assert fill_line({"event": "Regatta", "n": 2}, "one email{event:text? for **#**}{n:number?, # times}") == \
        "one email for **Regatta**, 2 times"


@pytest.mark.parametrize("line, named", [
    ("{nmae}", "a row has no 'nmae' (it has name, amount)"),
    ("{amount:dollars}", "unknown format 'dollars'"),
    ("{amount:plural}", "write plural:word or plural:word|words"),
    ("{amount:money:2}", "only number, percent and months take a number of digits"),
    ("{amount:number?, turned away}", "needs # where the value goes"),
    ("{amount!r}", "not a !r conversion"),
    ("{name", "line '{name'"),
    ("{}", "name each field"),
    ("{amount:number:{name}}", "cannot hold another field"),
])
def test_a_wrong_pattern_names_the_pattern_and_what_is_wrong(line, named):
    with pytest.raises(ValueError) as error:
        fill_line({"name": "JADA", "amount": 3}, line)
    assert named in str(error.value) and repr(line) in str(error.value)


def test_check_list_goes_on_after_the_decisions_and_counts_the_rest_by_severity():
    checks = [{"id": f"c{i}", "severity": severity, "message": f"Issue {i}."}
              for i, severity in enumerate(["critical", "high", "high", "medium", "medium", "medium", "low"])]
    listed = check_list(checks, 2, skip=3, where="in the sections below", by_severity=True).splitlines()
    assert listed == ["- **MEDIUM** Issue 3.", "- **MEDIUM** Issue 4.",
                      "- *and 2 more (1 medium, 1 low) in the sections below*"]
    assert check_list(checks[:3], 2, skip=3, empty="None beyond the decisions above.") == \
        "None beyond the decisions above."
    with pytest.raises(ValueError, match="skip must be a whole number"):
        check_list(checks, skip=-1)
    assert [c["message"] for c in checks_by_id(checks, "c1", "c6")] == ["Issue 1.", "Issue 6."]
    with pytest.raises(ValueError, match="name the check ids"):
        checks_by_id(checks)


def test_a_change_against_an_average_reads_new_when_there_was_none():
    assert [percent_change(v) for v in (12.4, -40.0, 0.0, None)] == ["12%", "-40%", "0%", "new"]
