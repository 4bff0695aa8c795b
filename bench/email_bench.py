"""The email's own costs: render per report without charts, chart drawing per chart and per report, and
the largest portfolio report at 100 entities. Prints a table; nothing here asserts.

    .venv/bin/python -m bench.email_bench            # standalone
    from bench.email_bench import bench_email        # from bench/run_bench.py: bench_email(workdir) -> dict,
    rows = email_result_rows(result)                 # and its rows for the results table

Targets (issue 13): render per report ≤ 20 ms median without charts; each chart ≤ 60 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.synthetic import PROJECT_ROOT, make_portfolio

PERIOD = "2026-W47"
RENDER_TARGET_MS = 20.0
CHART_TARGET_MS = 60.0


def _cpu_and_wall(function) -> tuple[float, float, object]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = function()
    return (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000, result


def chart_import_ms() -> float:
    """matplotlib's import (Agg backend, Figure, ticker, PIL) in a fresh interpreter: what the first
    chart of a run pays, and what check/preview never pay since the import is lazy."""
    code = ("import time; t = time.perf_counter()\n"
            "from matplotlib.backends.backend_agg import FigureCanvasAgg\n"
            "from matplotlib.figure import Figure\nfrom matplotlib.ticker import FuncFormatter\nfrom PIL import Image\n"
            "print((time.perf_counter() - t) * 1000)")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 cwd=PROJECT_ROOT).stdout) for _ in range(3)]
    return statistics.median(runs)


@contextmanager
def _temporary_cache(folder: Path) -> Iterator[None]:
    from flows.core.cache import CACHE_ENV

    saved = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = saved


def bench_email(workdir: Path, tenants: int = 100, repeats: int = 3) -> dict:
    from flows.core.config import load_config
    from flows.core.period import parse_period
    from flows.gather.gather import gather_all
    from flows.plan.definitions import load_definitions
    from flows.plan.plan import plan_run
    from flows.render.report import build_report

    config = load_config(make_portfolio(tenants, workdir / f"email-{tenants}", with_tenant_report=False))
    period = parse_period(PERIOD)
    definitions, _ = load_definitions(config.reports_path)
    plan = plan_run(config, definitions, period)
    values = gather_all(config, plan)
    portfolio = [i for i in plan.instances if i.key == "portfolio"]
    one_tenant = [i for i in plan.instances if i.key != "portfolio"][:10]
    instances = portfolio + one_tenant
    build_report(instances[0], values, config, period)  # warm the theme, parser and premailer caches

    render_ms: dict[str, list[float]] = {}
    render_cpu_ms: list[float] = []
    stage_ms: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    last = {}
    for _ in range(repeats):
        for instance in instances:
            timings: dict[str, float] = {}
            cpu, wall, result = _cpu_and_wall(lambda instance=instance, timings=timings: build_report(
                instance, values, config, period, timings=timings, draw_charts=False))
            rendered, _ = result
            render_ms.setdefault(instance.label, []).append(wall)
            render_cpu_ms.append(cpu)
            for name, seconds in timings.items():
                stage_ms.setdefault(name, []).append(seconds * 1000)
            sizes[instance.label] = rendered.html_bytes
            last[instance.label] = rendered

    # Charts: drawn once per report (the PNG is kept on the message), so one draw each is the cost.
    # The first draw in the process also pays matplotlib's font setup; it is reported apart. Drawing is
    # measured with render_png (never the cache); a chart already in the on-disk cache (flows/core/cache.py:
    # the same figures drawn by an earlier run) costs the cached figure.
    from flows.render.charts import cached_png, render_png

    first_images = [spec for rendered in last.values() for spec in rendered.charts]
    first_ms = None
    if first_images:
        _, first_ms, _ = _cpu_and_wall(lambda: render_png(first_images[0]))
    chart_wall: list[float] = []
    chart_cpu: list[float] = []
    per_report_charts: dict[str, float] = {}
    png_bytes: list[int] = []
    for label, rendered in last.items():
        total = 0.0
        for spec in rendered.charts:
            for _ in range(repeats):
                cpu, wall, png = _cpu_and_wall(lambda spec=spec: render_png(spec))
                chart_wall.append(wall)
                chart_cpu.append(cpu)
            png_bytes.append(len(png))
            total += statistics.median(chart_wall[-repeats:])
        if rendered.charts:
            per_report_charts[label] = total
    cached_ms: list[float] = []
    with _temporary_cache(workdir / "email-chart-cache"):
        for spec in first_images:
            cached_png(spec)  # fills the cache
            cached_ms.append(_cpu_and_wall(lambda spec=spec: cached_png(spec))[1])
    largest = max(portfolio, key=lambda i: sizes[i.label])
    all_render = [ms for label, values in render_ms.items() for ms in values]
    return {
        "tenants": tenants,
        "reports": len(instances),
        "render_median_ms": statistics.median(all_render),
        "render_cpu_median_ms": statistics.median(render_cpu_ms),
        "stages_median_ms": {name: statistics.median(v) for name, v in stage_ms.items()},
        "chart_cached_median_ms": statistics.median(cached_ms) if cached_ms else 0.0,
        "render_by_report_ms": {label: statistics.median(v) for label, v in render_ms.items()},
        "largest_report": largest.label,
        "largest_render_ms": statistics.median(render_ms[largest.label]),
        "largest_html_kb": sizes[largest.label] / 1024,
        "html_kb_by_report": {label: size / 1024 for label, size in sizes.items()},
        "charts": len(chart_wall) // max(repeats, 1),
        "chart_median_ms": statistics.median(chart_wall) if chart_wall else 0.0,
        "chart_cpu_median_ms": statistics.median(chart_cpu) if chart_cpu else 0.0,
        "chart_first_ms": first_ms,
        "chart_png_kb_median": statistics.median(png_bytes) / 1024 if png_bytes else 0.0,
        "charts_per_report_ms": per_report_charts,
        "chart_import_ms": chart_import_ms(),
    }


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def email_result_rows(result: dict) -> list[str]:
    """Rows for bench/results.md's table (| # | measure | result | target | |)."""
    charts = result["charts_per_report_ms"]
    worst = max(charts.items(), key=lambda item: item[1]) if charts else ("-", 0.0)
    return [
        f"| 6 | render per report without charts ({result['reports']} reports at {result['tenants']} entities) | "
        f"median {result['render_median_ms']:.1f} ms ({result['render_cpu_median_ms']:.1f} ms CPU; "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in sorted(result["stages_median_ms"].items(), key=lambda i: -i[1]))
        + f" ms) | median ≤ {RENDER_TARGET_MS:.0f} ms | "
        f"{verdict(result['render_median_ms'] <= RENDER_TARGET_MS)} |",
        f"| 6 | largest portfolio report at {result['tenants']} entities ({result['largest_report']}) | "
        f"{result['largest_render_ms']:.1f} ms, {result['largest_html_kb']:.0f} KB of HTML | ≤ 102 KB | "
        f"{verdict(result['largest_html_kb'] <= 102)} |",
        f"| 6 | chart drawing (matplotlib Agg, PNG at 2×, {result['charts']} charts) | median {result['chart_median_ms']:.0f} ms "
        f"wall / {result['chart_cpu_median_ms']:.0f} ms CPU per chart; first chart {result['chart_first_ms'] or 0:.0f} ms; "
        f"import {result['chart_import_ms']:.0f} ms; most per report {worst[1]:.0f} ms ({worst[0]}); from the chart "
        f"cache {result['chart_cached_median_ms']:.1f} ms | ≤ {CHART_TARGET_MS:.0f} ms "
        f"per chart | {verdict(result['chart_median_ms'] <= CHART_TARGET_MS)} |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="exec-reports-email-bench-") as tmp:
        result = bench_email(Path(tmp), args.tenants, args.repeats)
    print("| # | measure | result | target | |\n|---|---|---|---|---|")
    print("\n".join(email_result_rows(result)))
    print("\nper report: render ms (median) / HTML KB / charts ms")
    for label in sorted(result["render_by_report_ms"]):
        print(f"  {label:28} {result['render_by_report_ms'][label]:7.1f} ms  {result['html_kb_by_report'][label]:6.1f} KB"
              f"  {result['charts_per_report_ms'].get(label, 0):6.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
