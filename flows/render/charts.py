"""Drawing the charts a report declared (``flows.templating.charts.ChartSpec``) as PNG images, in the
render stage, so a rendered email carries finished bytes and delivery never draws.

matplotlib (Agg backend, no pyplot state) was chosen over Vega-Lite through vl-convert by measurement
(see the docs' benchmarks page). The same chart in the same style draws the same PNG: a re-run of a
period, or a chart that did not change since last week, comes from the on-disk cache
(``flows.core.cache``) instead of importing matplotlib and drawing. The cache key covers the chart (its
repr: kind, title, labels, every value, format, note), this module's source (style, size, scale,
palette, drawing code) and the versions of matplotlib and Pillow and any matplotlib configuration."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from flows.templating.charts import CHART_HEIGHT_PX, CHART_SCALE, CHART_WIDTH_PX, ChartSpec

PALETTE = ("#1d4ed8", "#f59e0b", "#10b981", "#6b7280")
_draw_lock = threading.Lock()  # pyplot's state machine is not thread-safe; we use the OO API but be safe
draw_timings: list[float] = []  # seconds per PNG drawn in this process (read by the benchmark)


def _axis_formatter(spec: ChartSpec):
    def formatted(value: float, _position: int) -> str:
        if spec.value_format == "percent":
            return f"{value * 100:.0f}%"
        magnitude = abs(value)
        prefix = "$" if spec.value_format == "money" else ""
        sign = "-" if value < 0 else ""
        if magnitude >= 1_000_000:
            return f"{sign}{prefix}{magnitude / 1_000_000:.1f}M"
        if magnitude >= 10_000:
            return f"{sign}{prefix}{magnitude / 1_000:.0f}k"
        if magnitude >= 1_000:
            return f"{sign}{prefix}{magnitude / 1_000:.1f}k"
        if magnitude < 10 and magnitude != int(magnitude):
            return f"{sign}{prefix}{magnitude:.1f}"
        return f"{sign}{prefix}{magnitude:.0f}"
    return formatted


def render_png(spec: ChartSpec) -> bytes:
    """Draw the chart with matplotlib's Agg backend (no display, no pyplot global state)."""
    started = time.perf_counter()
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter
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
        value_axis.set_major_formatter(FuncFormatter(_axis_formatter(spec)))
        if spec.kind == "bar":
            axes.set_yticks(positions, labels=list(spec.labels))
            axes.invert_yaxis()
            axes.grid(axis="x", color="#e5e7eb", linewidth=0.8)
        else:
            step = max(1, math.ceil(len(positions) / 12))
            axes.set_xticks(positions[::step], labels=list(spec.labels)[::step])
            axes.grid(axis="y", color="#e5e7eb", linewidth=0.8)
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        for side in ("left", "bottom"):
            axes.spines[side].set_color("#9ca3af")
        axes.tick_params(colors="#374151", labelsize=10, length=0)
        figure.text(0.012, 0.97, spec.title, ha="left", va="top", fontsize=12.5, color="#111827", fontweight="bold")
        if count > 1:
            axes.legend(loc="lower left", bbox_to_anchor=(-0.01, 1.0), ncols=count, frameon=False, fontsize=10,
                        handlelength=1.2, borderaxespad=0.2)
        # Fixed margins instead of tight_layout(), which draws the whole figure once more (a third of
        # the time); the bar chart's left margin fits its longest label.
        left = 0.09 if spec.kind != "bar" else min(0.4, 0.03 + 0.0125 * max(len(label) for label in spec.labels))
        figure.subplots_adjust(left=left, right=0.98, top=0.80 if count > 1 else 0.86, bottom=0.12)
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
    """A drawn chart as a related MIME part: its PNG bytes, its Content-ID and its alt text."""

    content_id: str
    alt: str
    png: bytes

    @property
    def filename(self) -> str:
        return self.content_id.split("@", 1)[0] + ".png"

    @classmethod
    def draw(cls, spec: ChartSpec) -> InlineImage:
        return cls(spec.content_id, spec.alt_text(), cached_png(spec))


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


def cached_png(spec: ChartSpec) -> bytes:
    """The chart's PNG from the cache, or drawn (and then cached)."""
    from flows.core import cache

    key = cache.cache_key(_renderer_fingerprint(), repr(spec))
    png = cache.read("charts", key)
    if png is not None and png.startswith(_PNG_SIGNATURE) and png.endswith(_PNG_END):
        return png
    png = render_png(spec)
    cache.write("charts", key, png)
    return png
