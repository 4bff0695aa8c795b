"""Render memory and arithmetic bounded by what is built, not by how it is written (case 3 of the second
hardening pass: a one-line template, ``map('list')`` over ``[range(10000)]*30000``, reached 4.1 GB before
the 10 s CPU limit fired, and ``(2**2000)*(2**2000)`` rendered while ``2**4000`` was refused)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from flows.core.errors import TemplateLimitError
from flows.templating.environments import environment
from flows.templating.limits import MAX_INT_BITS, render_budget, render_within_limits
from tests.conftest import PROJECT_ROOT

ONE_LINER = "{{ ([range(10000)] * 30000) | map('list') | list | length }}"


def render(source: str, **limits) -> str:
    with render_budget(**{"seconds": 10, **limits}):
        return render_within_limits(environment().from_string(source), {})


def render_in_a_child(source: str, **limits) -> dict:
    """Render in a fresh interpreter and report the error and how far its memory peaked above where it began."""
    script = textwrap.dedent(f"""
        import json
        from flows.templating.environments import environment
        from flows.templating.limits import render_budget, render_within_limits, resident_bytes
        template = environment().from_string({source!r})
        before = resident_bytes()
        try:
            with render_budget(**{limits!r}):
                render_within_limits(template, {{}})
            error = None
        except Exception as exc:
            error = f"{{type(exc).__name__}}: {{exc}}"
        # VmHWM: this process image's peak (ru_maxrss would include the parent's size at fork, before exec).
        status = open("/proc/self/status").read()
        peak = int(status.split("VmHWM:")[1].split()[0]) * 1024
        print(json.dumps({{"error": error, "grew": peak - before}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_one_line_template_is_refused_by_its_size_before_it_builds_anything():
    with pytest.raises(TemplateLimitError, match=r"over the limit of 5,000,000 \(limits.render_bytes\)"):
        render(ONE_LINER)


def test_what_passes_every_size_check_still_stops_at_the_memory_limit():
    # With the size limit out of the way, only the memory limit stands between it and gigabytes.
    outcome = render_in_a_child(ONE_LINER, seconds=60, max_bytes=10**12, memory_bytes=100_000_000)
    assert outcome["error"].startswith("TemplateLimitError: the render grew memory by ")
    assert outcome["error"].endswith("over the limit of 100,000,000 (limits.render_memory_bytes)")
    assert outcome["grew"] < 400_000_000  # stopped within a tick of the limit, not at 4 GB


def test_the_memory_limit_comes_from_the_config_and_the_environment(portfolio_copy, monkeypatch):
    from flows.core.config import load_config

    assert load_config(portfolio_copy).limits.render_memory_bytes == 512_000_000
    monkeypatch.setenv("EXEC_REPORTS_RENDER_MEMORY_BYTES", "200000000")
    assert load_config(portfolio_copy).limits.render_memory_bytes == 200_000_000
    portfolio_copy.write_text(portfolio_copy.read_text() + "\nlimits:\n  render_memory_bytes: 300000000\n")
    assert load_config(portfolio_copy).limits.render_memory_bytes == 300_000_000


@pytest.mark.parametrize("source", ["{{ 2**4000 }}", "{{ (2**2000) * (2**2000) }}", "{{ (2**600) * (2**600) }}",
                                    "{{ 2**1023 + 2**1023 }}", "{{ (3**600) ** 2 }}"])
def test_integer_results_are_bounded_however_they_are_written(source):
    with pytest.raises(TemplateLimitError, match=f"is too large: report templates allow integers up to "
                                                 f"{MAX_INT_BITS} bits"):
        render(source)


def test_integers_under_the_bound_still_work():
    assert render("{{ 2**1000 == (2**500) * (2**500) }} {{ 10**300 > 0 }} {{ 7 * 6 }} {{ 2 ** -1 }}") == \
        "yes yes 42 0.5"  # report templates print booleans as words
