"""Template resource limits: a runaway or oversized report fails alone, with the limit named, and the run
still ends with its summary, delivery table and alert (issue 15)."""

from __future__ import annotations

import email
import re
import time
from email import policy

import pytest

from flows.core.config import load_config
from flows.core.errors import TemplateLimitError
from flows.templating.environments import environment, plain_environment
from flows.templating.limits import MAX_RANGE, render_budget, render_within_limits
from tests.conftest import SAMPLE_PERIOD

TRIPLE_LOOP = ("{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}"
               "{% endfor %}{% endfor %}{% endfor %}done")


def render(source: str, *, seconds: float | None = 1, max_bytes: int = 1_000_000, env=None, **context) -> str:
    with render_budget(seconds, max_bytes):
        return render_within_limits((env or environment()).from_string(source), context)


def test_a_huge_power_is_neither_folded_at_compile_time_nor_computed():
    # Folded at compile time, this would hang here for minutes: the code must call the sandbox instead.
    code = environment().compile("{{ 9**(9**9) }}", raw=True)
    assert "call_binop(context, '**'" in code
    with pytest.raises(TemplateLimitError, match=r"9 \*\* 387420489 is too large"):
        render("{{ 9**(9**9) }}")
    with pytest.raises(TemplateLimitError, match="is too large"):
        render("{% set ns = namespace(x=3) %}{% for i in range(30) %}{% set ns.x = ns.x * ns.x %}{% endfor %}")


@pytest.mark.parametrize(("source", "reason"), [
    ("{{ 'x' * 10**8 }}", "'x' \\* 100000000 would be 100,000,000 long, over the limit of 1,000,000"),
    ("{{ [0] * 10**8 }}", "over the limit of 1,000,000"),
    ("{{ '%0999999999d' % 1 }}", "a formatted field would be 999,999,999 long"),
    ("{{ '%0999999999d' | format(1) }}", "a formatted field would be 999,999,999 long"),
    ("{{ '{:>999999999}'.format(1) }}", "a formatted field would be 999,999,999 long"),
    ("{{ 'x'.ljust(10**9) }}", "str.ljust\\(\\) would be 1,000,000,000 long"),
    ("{{ 'x' | center(10**9) }}", "argument of the center filter"),
    ("{{ range(1000) | join('x' * 10000) }}", "a joined text would be"),
    # A reference to a large text costs its length each time the list is written out.
    ("{{ ['x' * 100000] * 1000 }}", "would be 100,004,000 long"),
    ("{{ [['x' * 100000]] * 100 }}", "would be 10,000,800 long"),
    ("{% set ns = namespace(l=[]) %}{% for i in range(100) %}{% set ns.l = ns.l + ['x' * 100000] %}{% endfor %}",
     "the lists built by the template would be"),
    ("{% set l = [] %}{% for i in range(100) %}{{ l.append('x' * 100000) or '' }}{% endfor %}",
     "the lists built by the template would be"),
    ("{{ {}.fromkeys(range(100), 'x' * 100000) }}", "the result of fromkeys\\(\\) would be"),
    ("{{ ['x'] | batch(100, 'y' * 100000) | list }}", "the output of batch would be 10,000,"),
    ("{% set x %}{% for i in range(2000) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}{{ x | length }}",
     "a block's output would be 2,000,000 long"),
    ("{% macro m() %}{% for i in range(2000) %}{{ 'x' * 1000 }}{% endfor %}{% endmacro %}{{ m() | length }}",
     "a block's output would be 2,000,000 long"),
    ("{{ ('x' * 100000) | replace('x', 'yyyyyyyyyyyyyyyyyyyy') }}", "the output of replace"),
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
     "a joined text would be 1,048,576 long"),
    ("{% set items = [1] %}{% for i in range(40) %}{{ items.extend(items) or '' }}{% endfor %}",
     "the lists built by the template would be"),
    ("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}{{ 'end' }}", "the rendered report would be"),
    ("{{ [1] | batch(10**9, 0) | list }}", "argument of the batch filter"),
    ("{{ [[1]] | sum(start=[]) }}", "the sum filter adds numbers only"),
])
def test_operators_and_helpers_that_would_grow_without_bound_are_refused_before_they_allocate(source, reason):
    with pytest.raises(TemplateLimitError, match=reason):
        render(source)


def test_a_ranking_of_every_entity_may_be_as_large_as_the_figures_given_but_no_larger():
    """At 1,000 entities a list of every entity's view is ~5 MB written out: ranking them all re-arranges
    what the report was given; growing past it by more than the limit is still a runaway."""
    from flows.templating.limits import current_budget

    tenants = [{"name": f"Entity {i}", "attention": i, "finance": {"notes": "x" * 1000}} for i in range(50)]
    source = "{{ names(top(tenants, tenants | length, by='attention')[3:6]) }}"
    with render_budget(1, 20_000):
        current_budget().given(tenants)  # ~50 KB of figures against a 20 KB limit
        assert render_within_limits(environment().from_string(source), {"tenants": tenants}) == \
            "Entity 46, Entity 45 and Entity 44"
        with pytest.raises(TemplateLimitError, match=r"plus the 5\d,\d{3} of the figures the report was given"):
            render_within_limits(environment().from_string("{{ top(thrice(tenants), 1000) | length }}"),
                                 {"tenants": tenants, "thrice": lambda rows: [*rows, *rows, *rows]})
    # Without figures given, the same ranking is over the limit, as before.
    with pytest.raises(TemplateLimitError, match="the result of top"):
        render(source, max_bytes=20_000, tenants=tenants)


def test_ranges_are_bounded_and_runaway_loops_stop_at_the_deadline():
    with pytest.raises(TemplateLimitError, match=f"range\\(\\) of 100,000 items is over the limit of {MAX_RANGE:,}"):
        render("{% for a in range(100000) %}{% endfor %}")
    started = time.monotonic()
    with pytest.raises(TemplateLimitError, match="the render took longer than 0.5 s"):
        render(TRIPLE_LOOP, seconds=0.5)
    # Exponential recursion has no loop at all: every macro call checks the deadline too.
    with pytest.raises(TemplateLimitError, match="took longer than 0.5 s"):
        render("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
               seconds=0.5)
    # Hang guard, not a speed target: before the limits the triple loop ran for minutes.
    assert time.monotonic() - started < 30


def test_ordinary_templates_are_unchanged_by_the_limits():
    source = ("{{ 2 ** 10 }} {{ 3 * 4 }} {{ 'ab' * 3 }} {{ [1, 2] + [3] }} {{ '%5.1f' % 3.14159 }} "
              "{{ '{:,}'.format(1234567) }} {{ range(3) | join(',') }} {{ 'a b' | replace(' ', '-') }} "
              "{% for t in tenants %}{{ loop.index }}:{{ t ~ '!' }}{% if not loop.last %},{% endif %}{% endfor %}")
    expected = "1024 12 ababab [1, 2, 3]   3.1 1,234,567 0,1,2 a-b 1:a!,2:b!"
    assert render(source, env=plain_environment(), tenants=["a", "b"]) == expected
    # Without a budget (compile checks, previews) nothing stops on time, and sizes keep the default limit.
    assert plain_environment().from_string(source).render(tenants=["a", "b"]) == expected


def test_translate_and_lipsum_are_not_available_to_templates():
    from jinja2.exceptions import SecurityError, UndefinedError

    with pytest.raises(SecurityError):
        render("{{ 'x'.translate({120: 'y' * 1000}) }}")
    with pytest.raises(UndefinedError):
        render("{{ lipsum(10**6) }}")


def test_limits_come_from_the_config_and_the_environment(portfolio_copy, monkeypatch):
    config = load_config(portfolio_copy)
    assert (config.limits.render_seconds, config.limits.render_bytes) == (10.0, 5_000_000)
    monkeypatch.setenv("EXEC_REPORTS_RENDER_SECONDS", "2.5")
    assert load_config(portfolio_copy).limits.render_seconds == 2.5
    portfolio_copy.write_text(portfolio_copy.read_text() + "\nlimits:\n  render_seconds: 0\n")
    with pytest.raises(Exception, match=r"portfolio.yaml:\d+: limits.render_seconds: Input should be greater than 0"):
        load_config(portfolio_copy)


# ---- through the flow --------------------------------------------------------------------------------------

RUNAWAY = """---
role: runaway
title: Runaway
subject: Runaway {{ period.label }}
scope: portfolio
metrics: [finance.burn_rate]
---
{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}{% endfor %}{% endfor %}{% endfor %}
"""
OVERSIZED = """---
role: oversized
title: Oversized
subject: Oversized {{ period.label }}
scope: tenant
metrics: [finance.burn_rate]
---
{% for i in range(5000) %}{{ 'All figures in order. ' * 20 }}
{% endfor %}
"""
HUGE_POWER = """---
role: power
title: Power
subject: "Power {{ 9**(9**9) }}"
scope: portfolio
metrics: [finance.burn_rate]
---
Burn {{ money(tenants[0].finance.burn_rate) }}
"""


@pytest.mark.usefixtures("prefect_harness")
def test_a_runaway_report_fails_alone_and_the_run_still_ends_with_summary_table_and_alert(portfolio_copy):
    from flows.flow import run_summary, send_exec_reports

    reports = portfolio_copy.parent.parent / "reports"
    (reports / "runaway.md").write_text(RUNAWAY)
    (reports / "oversized.md").write_text(OVERSIZED)
    (reports / "power.md").write_text(HUGE_POWER)
    portfolio_copy.write_text(portfolio_copy.read_text() + "\nlimits:\n  render_seconds: 2\n  render_bytes: 1000000\n")

    started = time.monotonic()
    state = send_exec_reports(config=str(portfolio_copy), period=SAMPLE_PERIOD, return_state=True)
    elapsed = time.monotonic() - started

    assert state.is_failed()
    summary = run_summary(state)
    assert sorted(item["report"] for item in summary["sent"]) == ["accounting", "ceo", "cfo", "cmo", "cto",
                                                                  "gm", "gm", "gm", "gm"]
    failed = {(item["report"], item["tenant"]): item["reason"] for item in summary["failed"]}
    assert set(failed) == {("runaway", "portfolio"), ("power", "portfolio")} | {
        ("oversized", tenant) for tenant in ("jada", "queenofsandiego", "quickdumpnow", "dangerouscentaur")}
    # The line is where the template was when the time ran out (the runaway loop).
    assert re.search(r"reports/runaway\.md:8: the render took longer than 2 s \(limits\.render_seconds\)$",
                     failed[("runaway", "portfolio")])
    assert all("over the limit of 1,000,000 (limits.render_bytes)" in reason
               for (report, _), reason in failed.items() if report == "oversized")
    assert "9 ** 387420489 is too large" in failed[("power", "portfolio")]

    # The delivery table and the operations alert exist, so the run is visible and someone is told.
    from tests.flows.test_flow import artifacts_of

    keys = {artifact.key for artifact in artifacts_of(state.state_details.flow_run_id)}
    assert "exec-reports-deliveries" in keys
    [alert] = (portfolio_copy.parent.parent / "outbox" / summary["run"]).glob("portfolio-operations-alert--*.eml")
    text = email.message_from_bytes(alert.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
    assert "took longer than 2 s" in text and "Delivered anyway: 9 message(s)" in text
    # Hang guard, not a speed target: the limit plus the ordinary run's few seconds (it used to never end).
    assert elapsed < 2 + 45


@pytest.mark.parametrize("source", ["{{ money('1e999999999') }}", "{{ '1e999999999' | number }}",
                                    "{{ number(1, 10**9) }}", "{{ percent(0.5, digits=10**6) }}"])
def test_the_number_helpers_refuse_amounts_and_digits_no_report_needs(source):
    with pytest.raises(ValueError, match="too large to format|digits must be between 0 and 20"):
        render(source)
    assert render("{{ money(1234567.891, cents=True) }} {{ percent(0.125, 1) }}") == "$1,234,567.89 12.5%"
