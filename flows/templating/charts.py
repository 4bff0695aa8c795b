"""Charts a report template declares: ``chart(...)`` (``ChartCollector.chart``) checks its arguments,
records a ``ChartSpec`` and puts a Markdown image ``![alt](chart:N)`` in its place. The spec also gives
the alt text and, for the plain-text part, a small table of its figures. Drawing the PNG is the render
stage's (``flows.render.charts``), so a template never touches matplotlib."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flows.templating.escape import MarkdownSafe, escape_markdown
from flows.templating.formatters import money, month, number, percent
from sources.registry import is_available

# What report templates call (the helper reference in the docs lists these).
__all__ = ["ChartCollector", "ChartSpec", "CHART_KINDS", "MAX_POINTS", "MAX_SERIES", "MAX_CHARTS_PER_REPORT"]

CHART_KINDS = ("line", "bar", "column")
# Laid out for a phone: CHART_WIDTH_PX is the column at 375 px (the <img> width attribute, which Outlook
# for Windows draws at), so text drawn at CHART_TEXT_PT is at least 11 CSS px there; wider screens show it
# at that width too (never stretched, so its text stays the size it was drawn at). Drawn at 3x for sharp
# rendering on high-density screens.
CHART_WIDTH_PX, CHART_HEIGHT_PX, CHART_SCALE = 340, 220, 3
CHART_TEXT_PT = 8.0  # 8 pt at 100 dpi per CSS px = 11.1 CSS px
MAX_POINTS = 36
MAX_SERIES = 4
MAX_CHARTS_PER_REPORT = 8


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


_MONTH_KEY = re.compile(r"^\d{4}-\d{2}$")


def month_labels(labels: list[str]) -> list[str]:
    """Month keys ("2026-10") as a reader names them on an axis: "Oct", with the year on the first label and
    on each January ("May 2026", "Jun", ..., "Jan 2027"). Other labels are kept as they are."""
    if not labels or not all(_MONTH_KEY.match(label) for label in labels):
        return labels
    return [month(label) if index == 0 or label.endswith("-01") else month(label).split(" ", 1)[0]
            for index, label in enumerate(labels)]


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
    label_list = month_labels(label_list)
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
        if len(self.specs) >= MAX_CHARTS_PER_REPORT:
            raise ChartError(f"chart(): at most {MAX_CHARTS_PER_REPORT} charts per report")
        spec = make_spec(kind, title, rows, x, y, labels, series, format, note)
        self.specs.append(spec)
        # A block of its own, so the image is never glued to a paragraph.
        return MarkdownSafe(f"\n\n![{escape_markdown(spec.alt_text())}](chart:{len(self.specs) - 1})\n\n")
