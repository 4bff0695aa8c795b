"""Components: the parts of a brief that a template writes with one call and that read as parts of a
document. A component that needs more than Markdown can say (colour, a stacked layout that holds on a
phone without media queries) is recorded here and referenced from the Markdown as
``![](component:N)``, which the Markdown renderer turns into email-safe HTML (inline styles, tables)
and the plain-text part into lines; data inside it is escaped like any other value.

The comparisons a KPI shows are computed by the render stage (``flows.render.comparisons``); this
module only lays out what it is given."""

from __future__ import annotations

import html as html_lib
from dataclasses import dataclass, field

from flows.templating.escape import MarkdownSafe

__all__ = ["Kpi", "KpiStrip", "ComponentCollector", "COMPONENT_SRC_PREFIX", "MAX_KPIS"]

# ``![](component:N)``: like chart references, data cannot write one (escape_markdown escapes "!" and "[").
COMPONENT_SRC_PREFIX = "component:"
MAX_KPIS = 5
MAX_COMPONENTS_PER_REPORT = 20
GOOD_COLOUR, BAD_COLOUR, NEUTRAL_COLOUR = "#047857", "#b91c1c", "#4b5563"
VALUE_COLOUR = "#1f2933"  # the body text's colour (reports/theme/theme.css), for a KPI's value


@dataclass(frozen=True)
class Kpi:
    """One figure of a KPI strip, already in words: "Cash on hand", "$54,246", "▲ $1,200 vs last week"."""

    label: str
    value: str
    change: str = ""  # against the prior period, with its arrow; "" when there is nothing to compare
    good: bool | None = None  # colours the change: True good, False bad, None neither
    target: str = ""  # against target: "92% of the $13,000 target"
    note: str = ""  # what the figure leaves out, said next to it


@dataclass(frozen=True)
class KpiStrip:
    """The role's 3-5 headline figures, two to a row (label, value, then change and target under it):
    at 375 px each is 170 px wide, which holds the largest value the briefs show."""

    items: tuple[Kpi, ...]

    def html(self) -> str:
        """Two figures to a row (half the width each), so four fit one phone screen with room for the
        decisions under them; a table, so it holds in clients that ignore CSS layout."""
        cells = []
        for kpi in self.items:
            detail = []
            if kpi.change:
                if kpi.good is None:  # the cell's own grey
                    detail.append(f"<b>{_text(kpi.change)}</b>")
                else:
                    detail.append(f'<b style="color:{GOOD_COLOUR if kpi.good else BAD_COLOUR}">{_text(kpi.change)}</b>')
            for extra in (kpi.target, kpi.note):
                if extra:
                    detail.append(_text(extra))
            # The cell sets the small grey text of the label and the detail once; the value is the
            # exception (a span per line of text was a tenth of a brief's inline styles).
            cells.append(
                f'<td width="50%" valign="top" style="padding:8px 6px 8px 0;font-size:13px;color:{NEUTRAL_COLOUR}">'
                f'{_text(kpi.label)}<br><b style="font-size:21px;color:{VALUE_COLOUR}">{_text(kpi.value)}</b>'
                + (f'<br>{"<br>".join(detail)}' if detail else "")
                + "</td>")
        if len(cells) % 2:
            cells.append('<td width="50%"></td>')
        rows = ["<tr>" + cells[i] + cells[i + 1] + "</tr>" for i in range(0, len(cells), 2)]
        return ('<table class="kpi-strip" role="presentation" width="100%" cellpadding="0" cellspacing="0" '
                'style="border-collapse:collapse;margin:0 0 16px 0;table-layout:fixed">' + "".join(rows) + "</table>\n")

    def text(self) -> list[str]:
        lines = []
        for kpi in self.items:
            detail = "; ".join(part for part in (kpi.change, kpi.target, kpi.note) if part)
            lines.append(f"{kpi.label}: {kpi.value}" + (f" ({detail})" if detail else ""))
        return lines


def _text(value: str) -> str:
    return html_lib.escape(" ".join(str(value).split()))


@dataclass
class ComponentCollector:
    """The components one report writes; the Markdown carries a reference to each."""

    components: list[KpiStrip] = field(default_factory=list)

    def add(self, component: KpiStrip) -> MarkdownSafe:
        if len(self.components) >= MAX_COMPONENTS_PER_REPORT:
            raise ValueError(f"at most {MAX_COMPONENTS_PER_REPORT} components per report")
        self.components.append(component)
        # A block of its own, so it is never glued to a paragraph.
        return MarkdownSafe(f"\n\n![]({COMPONENT_SRC_PREFIX}{len(self.components) - 1})\n\n")
