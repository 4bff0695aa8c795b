"""Charts drawn by worker processes while the next reports render: the same bytes as drawn here, and the
same emails; a worker that dies costs time, never a chart."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from flows.core import cache
from flows.core.config import load_config
from flows.core.errors import ConfigurationError
from flows.core.period import parse_period
from flows.orchestrator import run as run_module
from flows.orchestrator.run import run_plain
from flows.render import charts
from flows.templating.charts import make_spec
from tests.conftest import SAMPLE_CONFIG, SAMPLE_PERIOD


def spec(title: str, values=(1250.0, 2200.0, 1975.0), kind="column"):
    return make_spec(kind, title, labels=["Sep 2026", "Oct", "Nov"], series={"Revenue": list(values),
                                                                             "Costs": [900.0, 1000.0, 1700.0]},
                     format="money")


def test_a_chart_drawn_by_a_worker_process_has_the_same_bytes_as_one_drawn_here(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    specs = [spec("Revenue and costs"), spec("Revenue by month", kind="line"), spec("By channel", kind="bar")]
    drawn_here = len(charts.draw_timings)
    with charts.drawing_in_background(workers=1):
        images = [charts.InlineImage.draw(s) for s in specs]
    assert all(isinstance(image.drawn, Future) for image in images)  # handed to the worker, not drawn here
    in_worker = [image.png for image in images]
    assert len(charts.draw_timings) == drawn_here
    assert in_worker == [charts.render_png(s) for s in specs]
    assert all(png.startswith(b"\x89PNG") for png in in_worker)


def test_a_role_rendered_ahead_with_background_charts_sends_the_same_emails(monkeypatch):
    # The sample's roles are smaller than the threshold: lower it so the GM briefs take the pool path.
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    config, period = load_config(SAMPLE_CONFIG), parse_period(SAMPLE_PERIOD)
    generated_at = __import__("datetime").datetime(2026, 11, 30, 7, tzinfo=__import__("datetime").UTC)
    monkeypatch.setenv(charts.CHART_WORKERS_ENV, "0")
    summary_serial, serial = run_plain(config, period, roles=["gm", "cmo"], generated_at=generated_at)
    monkeypatch.setenv(charts.CHART_WORKERS_ENV, "1")
    monkeypatch.setattr(run_module, "BACKGROUND_CHARTS_FROM", 1)
    monkeypatch.setattr(run_module, "RENDER_AHEAD", 2)
    summary_pool, pooled = run_plain(config, period, roles=["gm", "cmo"], generated_at=generated_at)
    assert summary_pool["dry_run"] == summary_serial["dry_run"] and len(summary_pool["dry_run"]) == 5
    assert sorted(pooled) == sorted(serial)
    assert sum(len(email.images) for email in pooled.values()) == 4  # one chart per GM brief
    for key, email in serial.items():
        other = pooled[key]
        assert (other.subject, other.html, other.text) == (email.subject, email.html, email.text), key
        assert [(i.content_id, i.alt, i.png) for i in other.images] == \
            [(i.content_id, i.alt, i.png) for i in email.images], key


def test_a_chart_whose_worker_died_is_drawn_here(monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    chart = spec("Revenue and costs")
    died: Future = Future()
    died.set_exception(RuntimeError("A process in the process pool was terminated abruptly"))
    image = charts.InlineImage(chart.content_id, chart.alt_text(), died, chart)
    assert image.png == charts.render_png(chart)


def test_the_number_of_chart_workers_is_a_whole_number(monkeypatch):
    monkeypatch.setenv(charts.CHART_WORKERS_ENV, "0")
    assert charts.chart_workers() == 0
    monkeypatch.delenv(charts.CHART_WORKERS_ENV)
    assert charts.chart_workers() >= 1
    monkeypatch.setenv(charts.CHART_WORKERS_ENV, "two")
    with pytest.raises(ConfigurationError, match="EXEC_REPORTS_CHART_WORKERS='two': set it to a whole number"):
        charts.chart_workers()
