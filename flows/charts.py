"""Charts declared in a report template, rendered to PNG for the email and to a text table for the
plain-text part.

A template calls ``chart(...)`` (see ``ChartCollector.chart``); that records a ``ChartSpec`` and
puts a Markdown image ``![alt](chart:N)`` in its place. The render step turns that image into
``<img src="cid:...">`` and the PNG becomes a related MIME part of the message.

The PNG is drawn only when something asks for its bytes (sending, the outbox preview), so checking or
previewing definitions never imports matplotlib. matplotlib (Agg backend) was chosen over Vega-Lite
through vl-convert by measurement; see README "Writing a report", Charts.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sources.registry import is_available

CHART_KINDS = ("line", "bar", "column")
# Drawn at 2x for sharp rendering on high-density screens; shown at CHART_WIDTH_PX CSS pixels.
CHART_WIDTH_PX, CHART_HEIGHT_PX, CHART_SCALE = 568, 240, 2
MAX_POINTS = 36
MAX_SERIES = 4
MAX_CHARTS_PER_REPORT = 8
PALETTE = ("#1d4ed8", "#f59e0b", "#10b981", "#6b7280")


class ChartError(ValueError):
    """A chart() call the template author must fix; the message names the argument."""


@dataclass(frozen=True)
class ChartSpec:
    kind: str
    title: str
    labels: tuple[str, ...]
    series: tuple[tuple[str, tuple[float | None, ...]], ...]
    value_format: str = "number"  # money | number | percent (fractions)
    note: str = ""

    @property
    def content_id(self) -> str:
        """Stable per chart content, so the same chart in a resend keeps its Content-ID."""
        import hashlib

        digest = hashlib.sha256(repr(self).encode()).hexdigest()[:16]
        return f"chart-{digest}@exec-reports"

    def format_value(self, value: float | None) -> str:
        from flows.templating import money, number, percent

        if value is None:
            return "—"
        if self.value_format == "money":
            return money(value)
        if self.value_format == "percent":
            return percent(value)
        return number(value, 1 if abs(value) < 10 and value != int(value) else 0)

    def alt_text(self) -> str:
        """What the chart says, for screen readers and clients that block images."""
        parts = []
        for name, values in self.series:
            shown = [v for v in values if v is not None]
            if not shown:
                parts.append(f"{name}: no data")
                continue
            first, last = shown[0], shown[-1]
            if len(shown) == 1:
                parts.append(f"{name} {self.format_value(last)}")
            else:
                parts.append(f"{name} from {self.format_value(first)} to {self.format_value(last)}")
        span = f"{self.labels[0]} to {self.labels[-1]}" if len(self.labels) > 1 else (self.labels[0] if self.labels else "")
        kind = {"line": "Line chart", "bar": "Bar chart", "column": "Column chart"}[self.kind]
        return f"{kind}, {self.title}, {span}: " + "; ".join(parts) + "."

    def text_table(self) -> list[str]:
        """The chart's figures as a small aligned table for the plain-text part."""
        header = ["", *[name for name, _ in self.series]]
        rows = [header]
        for index, label in enumerate(self.labels):
            rows.append([label, *[self.format_value(values[index]) for _, values in self.series]])
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [f"{self.title} (chart)"]
        for row_index, row in enumerate(rows):
            cells = [row[0].ljust(widths[0])] + [cell.rjust(widths[i]) for i, cell in enumerate(row) if i]
            lines.append("  ".join(cells).rstrip())
            if row_index == 0:
                lines.append("  ".join("-" * w for w in widths))
        return lines


def _number(value: Any, where: str) -> float | None:
    if value is None or not is_available(value):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ChartError(f"{where}: {value!r} is not a number")
    result = float(value)
    if math.isnan(result) or math.isinf(result):
        return None
    return result


def make_spec(kind: str, title: str, rows: Any = None, x: str | None = None, y: Any = None,
              labels: Iterable[Any] | None = None, series: Mapping[str, Iterable[Any]] | None = None,
              format: str = "number", note: str = "") -> ChartSpec:  # noqa: A002 - the name authors expect
    """Build a chart from rows (``rows``, ``x`` key, ``y`` key or {key: series name}) or from
    ``labels`` and ``series`` ({series name: values})."""
    if kind not in CHART_KINDS:
        raise ChartError(f"chart(): kind must be one of {', '.join(CHART_KINDS)}, got {kind!r}")
    if format not in ("money", "number", "percent"):
        raise ChartError(f"chart(): format must be money, number or percent, got {format!r}")
    if not title or not str(title).strip():
        raise ChartError("chart(): a title is required (it is also the start of the alt text)")
    if rows is not None:
        if not is_available(rows):
            raise ChartError(f"chart() {title!r}: its rows are unavailable")
        rows = list(rows)
        if x is None or y is None:
            raise ChartError(f"chart() {title!r}: with rows, give x (the label key) and y (a key or {{key: name}})")
        y_map = dict(y) if isinstance(y, Mapping) else {y: str(y).replace("_", " ").capitalize()}
        for index, row in enumerate(rows):
            for key in (x, *y_map):
                if key not in row:
                    raise ChartError(f"chart() {title!r}: row {index} has no key {key!r}")
        label_list = [str(row[x]) for row in rows]
        series_list = [(str(name), tuple(_number(row[key], f"chart() {title!r}: {key}[{i}]")
                                         for i, row in enumerate(rows)))
                       for key, name in y_map.items()]
    else:
        if labels is None or series is None:
            raise ChartError(f"chart() {title!r}: give rows=, x=, y= or labels= and series=")
        label_list = [str(label) for label in labels]
        series_list = []
        for name, values in dict(series).items():
            values = list(values)
            if len(values) != len(label_list):
                raise ChartError(f"chart() {title!r}: series {name!r} has {len(values)} values for "
                                 f"{len(label_list)} labels")
            series_list.append((str(name), tuple(_number(v, f"chart() {title!r}: {name}[{i}]")
                                                 for i, v in enumerate(values))))
    if not label_list:
        raise ChartError(f"chart() {title!r}: nothing to plot (no rows)")
    if len(label_list) > MAX_POINTS:
        raise ChartError(f"chart() {title!r}: {len(label_list)} points; at most {MAX_POINTS} read well in an email "
                         f"(slice the rows, e.g. rows[-12:])")
    if not series_list or len(series_list) > MAX_SERIES:
        raise ChartError(f"chart() {title!r}: give 1 to {MAX_SERIES} series, got {len(series_list)}")
    return ChartSpec(kind, " ".join(str(title).split()), tuple(label_list), tuple(series_list), format,
                     " ".join(str(note).split()))


@dataclass
class ChartCollector:
    """The ``chart()`` a template sees during one render; it remembers what the template declared."""

    specs: list[ChartSpec] = field(default_factory=list)

    def chart(self, kind: str, title: str, rows: Any = None, x: str | None = None, y: Any = None,
              labels: Iterable[Any] | None = None, series: Mapping[str, Iterable[Any]] | None = None,
              format: str = "number", note: str = ""):  # noqa: A002
        from flows.templating import MarkdownSafe, escape_markdown

        if len(self.specs) >= MAX_CHARTS_PER_REPORT:
            raise ChartError(f"chart(): at most {MAX_CHARTS_PER_REPORT} charts per report")
        spec = make_spec(kind, title, rows, x, y, labels, series, format, note)
        self.specs.append(spec)
        # A block of its own, so the image is never glued to a paragraph.
        return MarkdownSafe(f"\n\n![{escape_markdown(spec.alt_text())}](chart:{len(self.specs) - 1})\n\n")


# ---- drawing ---------------------------------------------------------------------------------------

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


@dataclass
class InlineImage:
    """A related MIME part: the chart, its Content-ID and alt text. The PNG is drawn on first use."""

    spec: ChartSpec
    _png: bytes | None = None

    @property
    def content_id(self) -> str:
        return self.spec.content_id

    @property
    def alt(self) -> str:
        return self.spec.alt_text()

    @property
    def filename(self) -> str:
        return self.content_id.split("@", 1)[0] + ".png"

    @property
    def png(self) -> bytes:
        if self._png is None:
            self._png = cached_png(self.spec)
        return self._png


# ---- the chart cache ---------------------------------------------------------------------------------
#
# The same figures in the same style draw the same PNG: a re-run of a period (or a report whose chart
# did not change since last week) reuses it from the on-disk cache (flows/cache.py) instead of importing
# matplotlib and drawing. The key covers the chart (its repr: kind, title, labels, every value, format,
# note), this module's source (style, size, scale, palette, drawing code) and the versions of
# matplotlib and Pillow and any matplotlib configuration in the environment.


@lru_cache(maxsize=1)
def _renderer_fingerprint() -> str:
    import os
    import sys
    from importlib.metadata import PackageNotFoundError, version

    from flows import cache

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
    from flows import cache

    key = cache.cache_key(_renderer_fingerprint(), repr(spec))
    png = cache.read("charts", key)
    if png is not None and png.startswith(_PNG_SIGNATURE) and png.endswith(_PNG_END):
        return png
    png = render_png(spec)
    cache.write("charts", key, png)
    return png
