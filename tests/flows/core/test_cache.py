"""The on-disk cache (flows/core/cache.py) of compiled report templates and chart PNGs: an unchanged input is
a hit, any change that could change the result is a miss; a damaged, unreadable or unwritable cache
is a miss, never an error. Hits and misses are counted, not timed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flows.core import cache
from flows.plan.definitions import error_line, load_definitions
from flows.render import charts
from flows.templating import compiled, environments, tables
from flows.templating.charts import make_spec
from tests.conftest import PROJECT_ROOT

REPORT = textwrap.dedent("""\
    ---
    role: ops
    title: Ops
    subject: "Ops {{ period.label }}"
    scope: tenant
    metrics: [handoffs.open_items]
    checks:
      - id: many_open
        when: tenant.handoffs.open_items | length > 2
        severity: high
        message: "{{ tenant.name }} has many open items"
    send_if: tenant.handoffs.open_items | length > 0
    ---
    # Ops

    Open items: {{ plural(tenant.handoffs.open_items | length, "item") }}
    """)
# One body, one subject, one check's condition and message, one send_if.
TEMPLATES_PER_REPORT = 5


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_ENV, str(folder))
    return folder


@pytest.fixture
def reports(tmp_path) -> Path:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "ops.md").write_text(REPORT)
    return folder


def load_counting(folder: Path) -> tuple[list, dict[str, int]]:
    before = dict(compiled.COMPILATIONS)
    definitions, problems = load_definitions(folder)
    assert problems == []
    return definitions, {name: compiled.COMPILATIONS[name] - before[name] for name in before}


def test_a_second_load_of_unchanged_reports_compiles_nothing(cache_dir, reports):
    _, first = load_counting(reports)
    _, second = load_counting(reports)
    assert first == {"compiled": TEMPLATES_PER_REPORT, "cached": 0}
    assert second == {"compiled": 0, "cached": TEMPLATES_PER_REPORT}


def test_the_shipped_reports_load_from_the_cache_the_second_time(cache_dir):
    _, first = load_counting(PROJECT_ROOT / "reports")
    _, second = load_counting(PROJECT_ROOT / "reports")
    assert first["compiled"] > 0
    assert second == {"compiled": 0, "cached": first["compiled"] + first["cached"]}


def test_a_changed_body_compiles_only_the_body_again_and_renders_the_new_text(cache_dir, reports):
    load_counting(reports)
    (reports / "ops.md").write_text(REPORT.replace("Open items:", "Items still open:"))
    [definition], counts = load_counting(reports)
    assert counts == {"compiled": 1, "cached": TEMPLATES_PER_REPORT - 1}
    text = definition.template.render(tenant={"handoffs": {"open_items": [1, 2]}}, plural=tables.plural)
    assert "Items still open: 2 items" in text


def test_a_changed_check_expression_misses(cache_dir, reports):
    load_counting(reports)
    (reports / "ops.md").write_text(REPORT.replace("| length > 2", "| length > 3"))
    [definition], counts = load_counting(reports)
    assert counts == {"compiled": 1, "cached": TEMPLATES_PER_REPORT - 1}
    condition = definition.checks[0].condition
    assert condition(tenant={"handoffs": {"open_items": [1, 2, 3]}}) is False  # 3 > 3: the new expression


def test_the_same_text_in_another_file_misses_since_tracebacks_name_the_file(cache_dir, reports):
    load_counting(reports)
    (reports / "ops2.md").write_text(REPORT.replace("role: ops", "role: ops2"))
    _, counts = load_counting(reports)
    # ops2.md: body, subject and check message are new (the file name is in their code); the two
    # expressions carry no file name.
    assert counts == {"compiled": 3, "cached": 2 * TEMPLATES_PER_REPORT - 3}


def test_a_different_sandbox_or_jinja_version_misses_everything(cache_dir, reports, monkeypatch):
    import jinja2

    load_counting(reports)
    with monkeypatch.context() as patch:
        patch.setattr(compiled, "_sandbox_fingerprint", lambda: "another sandbox")
        _, counts = load_counting(reports)
    assert counts == {"compiled": TEMPLATES_PER_REPORT, "cached": 0}
    with monkeypatch.context() as patch:
        compiled._sandbox_fingerprint.cache_clear()
        patch.setattr(jinja2, "__version__", "0.0-not-this-one")
        _, counts = load_counting(reports)
    assert counts == {"compiled": TEMPLATES_PER_REPORT, "cached": 0}
    compiled._sandbox_fingerprint.cache_clear()
    _, counts = load_counting(reports)
    assert counts == {"compiled": 0, "cached": TEMPLATES_PER_REPORT}


def test_a_filter_added_to_the_environment_misses(cache_dir, reports, monkeypatch):
    # Jinja checks filter names when it compiles, so code compiled with another set of filters is not reused.
    load_counting(reports)
    monkeypatch.setitem(environments.environment().filters, "shout", str.upper)
    _, counts = load_counting(reports)
    assert counts == {"compiled": 1, "cached": TEMPLATES_PER_REPORT - 1}  # only the body uses environment()


def test_the_sandbox_fingerprint_follows_the_module_source(tmp_path):
    module = tmp_path / "limits_module.py"
    module.write_text("MAX_RANGE = 10_000\n")

    class Module:
        __file__ = str(module)

    before = cache.source_fingerprint(Module)
    assert cache.source_fingerprint(Module) == before
    module.write_text("MAX_RANGE = 20_000\n")
    assert cache.source_fingerprint(Module) != before


def test_a_damaged_entry_is_a_miss_and_is_rewritten(cache_dir, reports):
    load_counting(reports)
    entries = sorted((cache_dir / "templates").iterdir())
    assert len(entries) == TEMPLATES_PER_REPORT
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:-5])  # truncated: the checksum no longer matches
    [definition], counts = load_counting(reports)
    assert counts == {"compiled": TEMPLATES_PER_REPORT, "cached": 0}
    assert "Open items: 1 item" in definition.template.render(tenant={"handoffs": {"open_items": [1]}},
                                                              plural=tables.plural)
    _, counts = load_counting(reports)
    assert counts == {"compiled": 0, "cached": TEMPLATES_PER_REPORT}


def test_a_run_time_error_names_the_same_line_from_a_cached_template(cache_dir, reports):
    (reports / "ops.md").write_text(REPORT + "\n{{ 1 // 0 }}\n")
    line = len((REPORT + "\n{{ 1 // 0 }}\n").splitlines())
    lines = []
    for expected in ({"compiled": TEMPLATES_PER_REPORT, "cached": 0}, {"compiled": 0, "cached": TEMPLATES_PER_REPORT}):
        [definition], counts = load_counting(reports)
        assert counts == expected
        with pytest.raises(ZeroDivisionError) as raised:
            definition.template.render(tenant={"handoffs": {"open_items": []}}, plural=tables.plural)
        lines.append(error_line(raised.value, definition))
    assert lines == [line, line]


def test_caching_off_compiles_every_time_and_writes_nothing(tmp_path, reports, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        _, counts = load_counting(reports)
        assert counts == {"compiled": TEMPLATES_PER_REPORT, "cached": 0}
    assert cache.cache_dir() is None


def test_an_unwritable_cache_is_a_miss_not_an_error(tmp_path, reports, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv(cache.CACHE_ENV, str(blocker))
    for _ in range(2):
        _, counts = load_counting(reports)
        assert counts == {"compiled": TEMPLATES_PER_REPORT, "cached": 0}


def test_writes_are_atomic_and_leave_no_temporary_files(cache_dir):
    assert cache.write("kind", "key", b"first")
    assert cache.write("kind", "key", b"second")
    assert cache.read("kind", "key") == b"second"
    assert [path.name for path in (cache_dir / "kind").iterdir()] == ["key"]


def test_entries_unused_for_a_month_are_pruned_and_a_read_keeps_an_entry(cache_dir, monkeypatch):
    import os
    import time

    for key in ("old", "old-but-read", "fresh"):
        assert cache.write("kind", key, key.encode())
    (cache_dir / "kind" / ".tmp-left-by-a-crash").write_bytes(b"half")
    month_ago = time.time() - cache.MAX_AGE_SECONDS - 3600
    for name in ("old", "old-but-read", ".tmp-left-by-a-crash"):
        os.utime(cache_dir / "kind" / name, (month_ago, month_ago))
    assert cache.read("kind", "old-but-read") == b"old-but-read"  # a hit marks the entry as in use
    assert cache.prune(cache_dir / "kind") == 2
    assert sorted(path.name for path in (cache_dir / "kind").iterdir()) == ["fresh", "old-but-read"]


# ---- charts ---------------------------------------------------------------------------------------------


def spec(values=(1.0, 2.0, 3.0), title="Revenue"):
    return make_spec("column", title, labels=["Sep", "Oct", "Nov"], series={"Revenue": list(values)},
                            format="money")


def test_a_chart_drawn_once_is_not_drawn_again_and_gives_the_same_bytes(cache_dir):
    drawn = len(charts.draw_timings)
    first = charts.InlineImage.draw(spec()).png
    second = charts.InlineImage.draw(spec()).png
    assert len(charts.draw_timings) == drawn + 1
    assert first == second and first.startswith(b"\x89PNG")


def test_a_chart_with_other_data_title_or_renderer_is_drawn_again(cache_dir, monkeypatch):
    first = charts.InlineImage.draw(spec()).png
    drawn = len(charts.draw_timings)
    other_data = charts.InlineImage.draw(spec(values=(1.0, 2.0, 4.0))).png
    other_title = charts.InlineImage.draw(spec(title="Revenue by month")).png
    assert len(charts.draw_timings) == drawn + 2
    assert len({first, other_data, other_title}) == 3
    monkeypatch.setattr(charts, "_renderer_fingerprint", lambda: "another renderer")
    assert charts.InlineImage.draw(spec()).png == first  # drawn again: same code, same bytes
    assert len(charts.draw_timings) == drawn + 3


def test_a_damaged_chart_entry_is_drawn_again(cache_dir):
    good = charts.InlineImage.draw(spec()).png
    for entry in (cache_dir / "charts").iterdir():
        entry.write_bytes(entry.read_bytes()[:100])
    drawn = len(charts.draw_timings)
    assert charts.InlineImage.draw(spec()).png == good
    assert len(charts.draw_timings) == drawn + 1
