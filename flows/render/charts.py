"""Drawing the charts a report declared (``flows.templating.charts.ChartSpec``) as PNG images, in the
render stage, so a rendered email carries finished bytes and delivery never draws.

matplotlib (Agg backend, no pyplot state) was chosen over Vega-Lite through vl-convert by measurement
(see the docs' benchmarks page). The same chart in the same style draws the same PNG: a re-run of a
period, or a chart that did not change since last week, comes from the on-disk cache
(``flows.core.cache``) instead of importing matplotlib and drawing. The cache key covers the chart (its
repr: kind, title, labels, every value, format, note), this module's source (style, size, scale,
palette, drawing code) and the versions of matplotlib and Pillow and any matplotlib configuration."""

from __future__ import annotations

import atexit
import math
import os
import re
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache

from flows.templating.charts import CHART_HEIGHT_PX, CHART_SCALE, CHART_TEXT_PT, CHART_WIDTH_PX, ChartSpec

PALETTE = ("#1d4ed8", "#f59e0b", "#10b981", "#6b7280")
_draw_lock = threading.Lock()  # pyplot's state machine is not thread-safe; we use the OO API but be safe
draw_timings: list[float] = []  # seconds per PNG drawn in this process (read by the benchmark)


# A bar chart's category label is wrapped to this many characters a line, so it is never cut.
LABEL_WRAP = 24


_MONTH_WITH_YEAR = re.compile(r"^[A-Z][a-z]{2} \d{4}$")


def tick_labels(values: list[float], value_format: str) -> list[str]:
    """The value axis's labels, exact and alike: one unit for the whole axis (M, k or none, by the largest
    tick) and the fewest decimals that write every tick exactly, so 12,500 is "$12.5k" beside "$15.0k",
    never "$12k" beside "$15k", and "$5k" never sits beside "$10.0k"."""
    if value_format == "percent":
        values, unit, suffix, prefix = [v * 100 for v in values], 1, "%", ""
    else:
        largest = max((abs(v) for v in values), default=0)
        unit, suffix = (1_000_000, "M") if largest >= 1_000_000 else (1_000, "k") if largest >= 1_000 else (1, "")
        prefix = "$" if value_format == "money" else ""
    scaled = [v / unit for v in values]
    decimals = next((d for d in range(3) if all(abs(s * 10 ** d - round(s * 10 ** d)) < 1e-6 for s in scaled)), 2)
    zero = f"{prefix}0" + ("%" if value_format == "percent" else "")
    return [f"{'-' if s < 0 else ''}{prefix}{abs(s):,.{decimals}f}{suffix}" if s else zero for s in scaled]


def _axis_formatter(spec: ChartSpec):
    from matplotlib.ticker import Formatter

    class ExactTicks(Formatter):
        def format_ticks(self, values):
            return tick_labels(list(values), spec.value_format)

        def __call__(self, value, position=None):
            return tick_labels([value], spec.value_format)[0]

    return ExactTicks()


def render_png(spec: ChartSpec) -> bytes:
    """Draw the chart with matplotlib's Agg backend (no display, no pyplot global state)."""
    started = time.perf_counter()
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    dpi = 100 * CHART_SCALE
    with _draw_lock:
        figure = Figure(figsize=(CHART_WIDTH_PX / 100, CHART_HEIGHT_PX / 100), dpi=dpi)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        positions = list(range(len(spec.labels)))
        count = len(spec.series)
        for index, (name, values) in enumerate(spec.series):
            color = PALETTE[index % len(PALETTE)]
            if spec.kind == "line":
                points = [(p, v) for p, v in zip(positions, values, strict=True) if v is not None]
                axes.plot([p for p, _ in points], [v for _, v in points], color=color, linewidth=2.2,
                          marker="o", markersize=3.5, label=name)
            else:
                width = 0.8 / count
                offsets = [p - 0.4 + width * (index + 0.5) for p in positions]
                heights = [v if v is not None else 0 for v in values]
                if spec.kind == "bar":
                    axes.barh(offsets, heights, height=width, color=color, label=name)
                else:
                    axes.bar(offsets, heights, width=width, color=color, label=name)
        value_axis, label_axis = (axes.xaxis, axes.yaxis) if spec.kind == "bar" else (axes.yaxis, axes.xaxis)
        value_axis.set_major_formatter(_axis_formatter(spec))
        value_axis.get_major_locator().set_params(nbins=4)
        # A zero baseline: bars imply magnitude, and a line of $66 to $69 must not read as a spike.
        values = [v for _, series in spec.series for v in series if v is not None]
        if values and min(values) >= 0:
            (axes.set_xlim if spec.kind == "bar" else axes.set_ylim)(0, max(values) * 1.08 or 1)
        # A month's year goes under it ("May" over "2026"), so it never runs into the next month.
        wrapped = ["\n".join(textwrap.wrap(label, LABEL_WRAP)) or label for label in spec.labels] if spec.kind == "bar" \
            else [label.replace(" ", "\n", 1) if _MONTH_WITH_YEAR.match(label) else label for label in spec.labels]
        if spec.kind == "bar":
            axes.set_yticks(positions, labels=wrapped)
            axes.invert_yaxis()
            axes.grid(axis="x", color="#e5e7eb", linewidth=0.8)
        else:
            step = max(1, math.ceil(len(positions) / 6))
            axes.set_xticks(positions[::step], labels=wrapped[::step])
            axes.grid(axis="y", color="#e5e7eb", linewidth=0.8)
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        for side in ("left", "bottom"):
            axes.spines[side].set_color("#9ca3af")
        axes.tick_params(colors="#374151", labelsize=CHART_TEXT_PT, length=0)
        figure.text(0.02, 0.97, spec.title, ha="left", va="top", fontsize=CHART_TEXT_PT + 1.5, color="#111827",
                    fontweight="bold")
        if count > 1:
            axes.legend(loc="lower left", bbox_to_anchor=(-0.01, 1.0), ncols=count, frameon=False,
                        fontsize=CHART_TEXT_PT, handlelength=1.2, borderaxespad=0.2)
        # Fixed margins instead of tight_layout(), which draws the whole figure once more (a third of
        # the time): the value axis's margin fits its widest tick label, the bar chart's its longest
        # (wrapped) category label, at about 0.62 em a character.
        char = CHART_TEXT_PT * 100 / 72 * 0.62 / CHART_WIDTH_PX
        widest = max(len(line) for label in wrapped for line in label.split("\n"))
        left = 0.04 + char * (widest if spec.kind == "bar" else 7)
        lines = max(label.count("\n") + 1 for label in wrapped) if spec.kind != "bar" else 1
        figure.subplots_adjust(left=min(0.55, left), right=0.97, top=0.76 if count > 1 else 0.84,
                               bottom=0.1 + 0.05 * lines)
        figure.set_facecolor("white")
        canvas = figure.canvas
        canvas.draw()
        # Encode ourselves: RGB (no alpha channel to compress) at low zlib effort. Charts are flat
        # colours that compress well anyway; savefig's RGBA at level 6 took 3x longer. No metadata, so
        # the same chart gives the same bytes on every run (stable Content-ID and message size).
        image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG", compress_level=1)
    draw_timings.append(time.perf_counter() - started)
    return buffer.getvalue()


@dataclass(frozen=True)
class InlineImage:
    """A drawn chart as a related MIME part: its PNG bytes, its Content-ID and its alt text. ``drawn`` is
    the PNG, or a chart a worker process is still drawing (see ``drawing_in_background``): ``png`` waits."""

    content_id: str
    alt: str
    drawn: bytes | Future = field(repr=False)
    spec: ChartSpec | None = field(default=None, repr=False, compare=False)

    @property
    def png(self) -> bytes:
        if isinstance(self.drawn, bytes):
            return self.drawn
        try:
            png = self.drawn.result()
        except Exception:  # a worker that died (killed, out of memory): this process draws it instead
            png = cached_png(self.spec)
        object.__setattr__(self, "drawn", png)
        return png

    @property
    def filename(self) -> str:
        return self.content_id.split("@", 1)[0] + ".png"

    @classmethod
    def draw(cls, spec: ChartSpec) -> InlineImage:
        workers = _BACKGROUND.get()
        if not workers:
            return cls(spec.content_id, spec.alt_text(), cached_png(spec), spec)
        png = _from_cache(spec)  # the pool starts at the first chart not in the cache, never for a warm run
        return cls(spec.content_id, spec.alt_text(),
                   _chart_pool(workers).submit(cached_png, spec) if png is None else png, spec)


# ---- drawing in worker processes ------------------------------------------------------------------------
# A new week's data means every chart is drawn again (the cache only helps a re-run): a hundred GM briefs'
# charts were 4 s on one core. Inside ``drawing_in_background`` a chart that is not in the cache is drawn by
# a pool of worker processes while this one goes on rendering; its bytes are the same (the same code, fresh
# matplotlib state each time, no metadata). "spawn": a worker starts clean, never a fork of a process whose
# other threads (Prefect's) hold locks.
CHART_WORKERS_ENV = "EXEC_REPORTS_CHART_WORKERS"
_BACKGROUND: ContextVar[int] = ContextVar("chart_workers", default=0)
_pools: dict[int, Executor] = {}
_pools_lock = threading.Lock()


def chart_workers() -> int:
    """Worker processes that draw charts: ``$EXEC_REPORTS_CHART_WORKERS`` (0: draw in this process), else
    one fewer than the machine's cores (this process renders meanwhile), at least one."""
    from flows.core.errors import ConfigurationError

    value = os.environ.get(CHART_WORKERS_ENV, "").strip()
    if not value:
        return max(1, (os.cpu_count() or 1) - 1)
    if not value.isdigit():
        raise ConfigurationError(f"{CHART_WORKERS_ENV}={value!r}: set it to a whole number of worker processes "
                                 "(0 draws charts in the rendering process)")
    return int(value)


def _warm_worker() -> None:
    from matplotlib.backends import backend_agg  # noqa: F401  (imported once per worker, before its first chart)
    from PIL import Image  # noqa: F401


def _chart_pool(workers: int) -> Executor:
    with _pools_lock:
        if workers not in _pools:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            if not _pools:
                atexit.register(_stop_pools)
            _pools[workers] = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=_warm_worker)
        return _pools[workers]


def _stop_pools() -> None:
    """At exit, while the modules the pool's threads use are still there."""
    with _pools_lock:
        for pool in _pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        _pools.clear()


@contextmanager
def drawing_in_background(workers: int | None = None) -> Iterator[None]:
    """Charts drawn while this is open go to worker processes (none: ``chart_workers()``; 0: this process).
    The pool is started at the first chart not in the cache and kept for later runs of this process."""
    token = _BACKGROUND.set(chart_workers() if workers is None else workers)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)


@lru_cache(maxsize=1)
def _renderer_fingerprint() -> str:
    import os
    import sys
    from importlib.metadata import PackageNotFoundError, version

    from flows.core import cache

    versions = []
    for package in ("matplotlib", "pillow"):
        try:
            versions.append(version(package))
        except PackageNotFoundError:
            versions.append("unknown")
    return cache.cache_key(cache.source_fingerprint(sys.modules[__name__]), *versions,
                           os.environ.get("MATPLOTLIBRC", ""), os.environ.get("MPLCONFIGDIR", ""))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"


def _from_cache(spec: ChartSpec) -> bytes | None:
    from flows.core import cache

    png = cache.read("charts", cache.cache_key(_renderer_fingerprint(), repr(spec)))
    return png if png is not None and png.startswith(_PNG_SIGNATURE) and png.endswith(_PNG_END) else None


def cached_png(spec: ChartSpec) -> bytes:
    """The chart's PNG from the cache, or drawn (and then cached)."""
    from flows.core import cache

    if (png := _from_cache(spec)) is not None:
        return png
    png = render_png(spec)
    cache.write("charts", cache.cache_key(_renderer_fingerprint(), repr(spec)), png)
    return png
