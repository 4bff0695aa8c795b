"""What a run shows on its Prefect run page, as plain data (``flows.flow`` only hands it to Prefect): the
deliveries table with failures first and a short reason beside them, the full reasons as a second
artifact, and the per-role report artifacts with their charts as images the UI can load.

Why short: Prefect's table artifacts size each column to its longest cell, so one long reason (or an
absolute outbox path, or "skipped: already sent ...") pushed the columns after it off a 1,440 px
screen. The short column is enough to see what failed; ``exec-reports-failures`` has every word.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any

from flows.core.errors import Problem
from flows.core.period import Period
from flows.orchestrator.produce import ProducedReport
from flows.orchestrator.summary import Outcome
from flows.plan.plan import ReportInstance, report_key
from flows.templating.charts import ChartSpec

# The second artifact of a run that failed anything: every failure with its whole reason.
FAILURES_KEY = "exec-reports-failures"
SHORT_REASON_CHARACTERS = 100
# Failures first, then what went out, then what was only rendered or left alone.
STATUS_ORDER = {"failed": 0, "sent": 1, "dry-run": 2, "skipped": 3}
# Column order is what the UI shows left to right: what happened and why before the long cells.
DELIVERY_COLUMNS = ("status", "report", "tenant", "reason", "recipients", "variant", "location", "period")
# Prefect sets no size limit on an artifact, but the whole artifact goes through one API request into
# the server's database and back to every browser that opens the run: a role's artifact carries at most
# this many bytes of images, and the charts past it are shown as tables of their figures.
ARTIFACT_IMAGE_BUDGET = 1_000_000


_LONG_PATH = re.compile(r"(?<![\w.])/(?:[^\s/:;,'\"]+/)+([^\s/:;,'\"]+/[^\s/:;,'\"]+)")


# A flow run id in parentheses (the run name before it says which run) and a timestamp to the second and
# its zone: the table's other columns (and the whole reason) have them.
_RUN_ID = re.compile(r" \([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\)")
_STAMP = re.compile(r"\b(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}):\d{2}(?:\.\d+)?(Z|[+-]\d{2}:\d{2})?")


def _minutes(match: re.Match) -> str:
    zone = match[3] or ""
    return f"{match[1]} {match[2]}" + (" UTC" if zone in ("Z", "+00:00") else zone)


def short_reason(text: str, limit: int = SHORT_REASON_CHARACTERS) -> str:
    """The reason's first clause (``; `` separates a reason's parts) with its absolute paths cut to their
    last two parts, and how many clauses it left out; at most ``limit`` characters, cut at a word."""
    first = " ".join(str(text).strip().splitlines()[0].split()) if str(text).strip() else ""
    clauses = first.split("; ")
    first = _STAMP.sub(_minutes, _RUN_ID.sub("", _LONG_PATH.sub(r"…/\1", clauses[0])))
    if len(clauses) > 1:
        first += f" (+{len(clauses) - 1} more)"
    if len(first) <= limit:
        return first
    cut = first[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:") + "…"


def delivery_rows(outcomes: Iterable[Outcome], problems: Iterable[Problem], period: str) -> list[dict[str, Any]]:
    """One row per message (and per broken definition), failures first, in DELIVERY_COLUMNS order."""
    rows = [{"status": o.status, "report": o.report, "tenant": o.tenant, "reason": short_reason(o.reason),
             "recipients": ", ".join(o.recipients), "variant": o.variant, "location": o.location, "period": period}
            for o in outcomes]
    rows += [{"status": "failed", "report": p.role or p.path, "tenant": "", "reason": short_reason(str(p)), "recipients": "",
              "variant": "", "location": "", "period": period} for p in problems]
    return sorted(rows, key=lambda row: STATUS_ORDER.get(row["status"], len(STATUS_ORDER)))


def _text(value: str) -> str:
    """Data as text in Markdown: no emphasis, links, HTML or table cells it could open."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~])", r"\\\1", str(value)).replace("\n", " ")


def failures_markdown(outcomes: Iterable[Outcome], problems: Iterable[Problem], period: str) -> str | None:
    """The second artifact: every failure with its whole reason; None when nothing failed."""
    entries = [(f"{o.report} / {o.tenant}", ", ".join(o.recipients), o.reason) for o in outcomes
               if o.status == "failed"]
    entries += [(p.role or p.path, "", str(p)) for p in problems]
    if not entries:
        return None
    lines = [f"# {len(entries)} failure(s), {period}", ""]
    for what, recipients, reason in entries:
        lines.append(f"- **{_text(what)}**" + (f" ({_text(recipients)})" if recipients else "") + f": {_text(reason)}")
    return "\n".join(lines) + "\n"


_CHART_IMAGE = re.compile(r"!\[([^\]]*)\]\(chart:(\d+)\)")


def chart_table(spec: ChartSpec) -> str:
    """The figures a chart draws, as a Markdown table (its title as the first column's heading)."""
    names = [name for name, _ in spec.series]
    lines = ["| " + " | ".join(_text(cell) for cell in [spec.title or "", *names]) + " |",
             "|" + "---|" * (len(names) + 1)]
    for index, label in enumerate(spec.labels):
        cells = [label, *(spec.format_value(values[index] if index < len(values) else None)
                          for _, values in spec.series)]
        lines.append("| " + " | ".join(_text(cell) for cell in cells) + " |")
    return "\n" + "\n".join(lines) + "\n"


class ChartInliner:
    """Replaces the ``![alt](chart:N)`` references of one role's reports (which only an email can resolve)
    with the drawn PNG as a data URI while the role's image budget lasts, else with a table of figures."""

    def __init__(self, budget: int = ARTIFACT_IMAGE_BUDGET):
        self.budget = budget

    def __call__(self, markdown: str, charts: list[ChartSpec], pngs: list[bytes]) -> str:
        def replace(match: re.Match) -> str:
            index = int(match[2])
            if index >= len(charts):
                return match[1]
            if index < len(pngs):
                uri = "data:image/png;base64," + base64.b64encode(pngs[index]).decode("ascii")
                if len(uri) <= self.budget:
                    self.budget -= len(uri)
                    return f"![{match[1]}]({uri})"
            return chart_table(charts[index])

        return _CHART_IMAGE.sub(replace, markdown)


def report_sections(instance: ReportInstance, produced: ProducedReport, period: Period,
                    inline_charts: ChartInliner) -> list[str]:
    """A report's section of its role's artifact: its subject, its key, then its Markdown with its charts
    as images the UI can load (or tables of their figures)."""
    return [f"## {rendered.subject}\n\n`{report_key(instance, variant)}` · {period.label}\n\n"
            f"{inline_charts(rendered.markdown.strip(), rendered.charts, [i.png for i in rendered.images])}\n"
            for variant, rendered in produced.rendered.items()]
