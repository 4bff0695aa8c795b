"""Fuzzing report front matter (issue 29, what to build 8): any text, and valid front matter with
generated anchors, aliases, nesting and junk, loads as a definition or as problems that each name a line of
the file; never an exception, never an unbounded parse (a 1 KB alias bomb once ran for 100 s)."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.plan.definitions import load_definition

VALID = ("role: brief\ntitle: Brief\nsubject: Brief {{ period.label }}\nscope: tenant\n"
         "metrics: [finance.cash_on_hand]\n")
BODY = "Cash {{ money(finance.cash_on_hand) }}\n"


@st.composite
def alias_ladders(draw) -> str:
    """Anchors that each list the one before ``width`` times: from harmless to a bomb of any size."""
    levels, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


@st.composite
def nestings(draw) -> str:
    depth = draw(st.integers(1, 300))
    if draw(st.booleans()):
        return "deep: " + "[" * depth + "]" * depth + "\n"
    return "deep:\n" + "".join("  " * (level + 1) + f"k{level}:\n" for level in range(depth)) + "  " * (depth + 1) + "x\n"


yaml_ish = st.text(alphabet=st.sampled_from(list("abc:-[]{}&*!|>'\"#%@`, \n\t0123")), max_size=200)
extra = st.one_of(alias_ladders(), nestings(), yaml_ish, st.text(max_size=120))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(front=st.one_of(extra, extra.map(lambda chunk: VALID + chunk), extra.map(lambda chunk: chunk + VALID)))
def test_any_front_matter_loads_or_gives_problems_each_with_a_line(tmp_path_factory, front):
    path = tmp_path_factory.mktemp("fuzz") / "brief.md"
    path.write_text(f"---\n{front}\n---\n{BODY}", encoding="utf-8", errors="surrogatepass")
    started = time.monotonic()
    definition, problems = load_definition(path)
    assert time.monotonic() - started < 3
    if definition is not None:
        assert problems == [] and definition.role == "brief"
        return
    assert problems
    lines = front.count("\n") + 4  # the file's lines
    for problem in problems:
        assert problem.message and isinstance(problem.line, int) and 1 <= problem.line <= lines, problem
