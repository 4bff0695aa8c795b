"""Markdown -> HTML body and plain-text part, with markdown-it-py (raw HTML off, so data and template
text can never add markup). Task-list items become ☐/☑ text (mail clients drop form inputs); the
chart() helper's ``![alt](chart:N)`` becomes its ``cid:`` image; an agenda line's ``![](action:N)``
renders as nothing and tells which heading the action sits under."""

from __future__ import annotations

import html as html_lib
import re
import textwrap
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

from flows.render.stacked import STACKED_TABLE, render_stacked_table, stack_wide_tables
from flows.templating.agenda import ACTION_SRC_PREFIX
from flows.templating.charts import CHART_HEIGHT_PX, CHART_WIDTH_PX, ChartSpec
from flows.templating.components import COMPONENT_SRC_PREFIX, KpiStrip
from flows.templating.escape import escape_markdown

OPEN_BOX, DONE_BOX = "☐", "☑"
# Plain-text paragraphs are wrapped to this width (RFC 5322 recommends lines under 78 characters).
TEXT_WIDTH = 76
CHART_SRC_PREFIX = "chart:"


def task_items_plugin(md: MarkdownIt) -> None:
    """Turn ``- [ ] item`` into ``☐ item`` before inline parsing, and tag the list item.

    Working on the inline token's raw source means an escaped ``\\[ \\]`` from data never matches.
    """

    def rule(state) -> None:
        tokens = state.tokens
        for index in range(2, len(tokens)):
            token = tokens[index]
            if token.type != "inline" or tokens[index - 1].type != "paragraph_open":
                continue
            if tokens[index - 2].type != "list_item_open":
                continue
            content = token.content
            if content[:4] in ("[ ] ", "[x] ", "[X] "):
                done = content[1] in "xX"
                token.content = f"{DONE_BOX if done else OPEN_BOX} " + content[4:]
                tokens[index - 2].meta["task"] = "done" if done else "open"
                tokens[index - 2].attrSet("class", "task")
                # The list holding task items loses its bullets and indent once (ul.tasks), rather than
                # each item pulling itself back with a style of its own.
                for back in range(index - 3, -1, -1):
                    if tokens[back].type == "bullet_list_open" and tokens[back].level == tokens[index - 2].level - 1:
                        tokens[back].attrSet("class", "tasks")
                        break

    md.core.ruler.before("inline", "exec_reports_task_items", rule)


@lru_cache(maxsize=1)
def markdown_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(task_items_plugin)
    md.use(components_plugin)
    md.add_render_rule("table_open", _render_table_open)
    md.add_render_rule("table_close", _render_table_close)
    md.add_render_rule("image", _render_image)
    md.add_render_rule(STACKED_TABLE, render_stacked_table)
    md.add_render_rule("td_open", _render_cell_open)
    md.add_render_rule("th_open", _render_cell_open)
    return md


def _render_cell_open(self, tokens, index, options, env) -> str:
    """A cell's alignment as the align and valign attributes every mail client reads, not a style on
    each cell (inline styles are most of an email's HTML)."""
    token = tokens[index]
    style = token.attrGet("style") or ""
    if style.startswith("text-align:"):
        token.attrs.pop("style", None)
        token.attrSet("align", style.split(":", 1)[1].strip())
    token.attrSet("valign", "top" if token.tag == "td" else "bottom")
    return self.renderToken(tokens, index, options, env)


def components_plugin(md: MarkdownIt) -> None:
    """A paragraph that is nothing but ``![](component:N)`` becomes one ``exec_component`` block token, so
    the component's HTML (a table) is never wrapped in a paragraph."""

    def rule(state) -> None:
        tokens = state.tokens
        index = 0
        while index + 2 < len(tokens):
            opening, inline, closing = tokens[index:index + 3]
            if opening.type == "paragraph_open" and inline.type == "inline" and closing.type == "paragraph_close":
                children = [c for c in inline.children or [] if not (c.type == "text" and not c.content.strip())]
                if len(children) == 1 and children[0].type == "image":
                    number = _reference(str(children[0].attrGet("src") or ""), COMPONENT_SRC_PREFIX)
                    if number is not None:
                        block = Token("exec_component", "", 0, block=True, map=opening.map)
                        block.meta = {"index": number}
                        tokens[index:index + 3] = [block]
            index += 1

    md.core.ruler.push("exec_reports_components", rule)
    md.add_render_rule("exec_component", _render_component)


def _render_component(self, tokens, index, options, env) -> str:
    components = (env or {}).get("components", [])
    number = tokens[index].meta["index"]
    return components[number].html() if number < len(components) else ""


def _render_table_open(self, tokens, index, options, env) -> str:
    # A wide table scrolls inside its own box on a phone; the page itself never gets wider. The cells'
    # padding is the table's cellpadding attribute, not a style repeated on every cell.
    tokens[index].attrSet("cellpadding", "4")
    tokens[index].attrSet("cellspacing", "0")
    return '<div class="table-scroll">' + self.renderToken(tokens, index, options, env)


def _render_table_close(self, tokens, index, options, env) -> str:
    return self.renderToken(tokens, index, options, env) + "</div>\n"


def _reference(src: str, prefix: str) -> int | None:
    """N of a ``chart:N`` / ``action:N`` image source, or None."""
    number = src[len(prefix):] if src.startswith(prefix) else ""
    return int(number) if number.isdigit() else None


def _render_image(self, tokens, index, options, env) -> str:
    """``![alt](chart:N)`` from the chart() helper becomes the chart's cid: image; ``![](action:N)`` from an
    agenda line renders nothing; any other image is dropped to its alt text (a report cannot pull images
    from the network)."""
    token = tokens[index]
    src = str(token.attrGet("src") or "")
    if _reference(src, ACTION_SRC_PREFIX) is not None or _reference(src, COMPONENT_SRC_PREFIX) is not None:
        return ""  # a component reference inside other text has no place to go: nothing is drawn
    alt = self.renderInlineAsText(token.children or [], options, env)
    charts: list[ChartSpec] = (env or {}).get("charts", [])
    number = _reference(src, CHART_SRC_PREFIX)
    if number is not None and number < len(charts):
        chart = charts[number]
        return (f'<img class="chart" src="cid:{html_lib.escape(chart.content_id)}" '
                f'width="{CHART_WIDTH_PX}" height="{CHART_HEIGHT_PX}" alt="{html_lib.escape(chart.alt_text())}">')
    return html_lib.escape(alt)


# An agenda line's reference to its recorded action. Data cannot write one: escape_markdown escapes "!",
# "[" and "]" in every value, so only the action() helper produces this exact text.
_ACTION_REFERENCE = re.compile(r"!\[\]\(" + re.escape(ACTION_SRC_PREFIX) + r"\d+\)")


_COMPONENT_REFERENCE = re.compile(r"!\[\]\(" + re.escape(COMPONENT_SRC_PREFIX) + r"(\d+)\)")


def readable_markdown(markdown: str, components: list[KpiStrip] | None = None) -> str:
    """The Markdown as a reader sees it (the report artifact, the preview's .md): without action
    references, and each component as its text lines."""
    components = components or []

    def component_text(match: re.Match) -> str:
        number = int(match.group(1))
        lines = components[number].text() if number < len(components) else []
        return "\n\n".join(escape_markdown(line) for line in lines)

    return _COMPONENT_REFERENCE.sub(component_text, _ACTION_REFERENCE.sub("", markdown))


def markdown_to_html(markdown: str, charts: list[ChartSpec] | None = None,
                     components: list[KpiStrip] | None = None) -> tuple[str, list[Token]]:
    md = markdown_parser()
    tokens = md.parse(markdown)
    env = {"charts": charts or [], "components": components or []}
    # Wide tables become stacked rows in the HTML only; the text part and the action headings read the tokens.
    return md.renderer.render(stack_wide_tables(tokens), md.options, env), tokens


def action_headings(tokens: list[Token]) -> dict[int, str]:
    """Where each recorded action landed: action number -> the text of the heading above its line. An
    action whose line never reached the document (a template that built one and dropped it) is absent."""
    placed: dict[int, str] = {}
    heading = ""
    for index, token in enumerate(tokens):
        if token.type != "inline":
            continue
        if index and tokens[index - 1].type == "heading_open":
            heading = _inline_text(token)
            continue
        for child in token.children or []:
            if child.type == "image":
                number = _reference(str(child.attrGet("src") or ""), ACTION_SRC_PREFIX)
                if number is not None:
                    placed.setdefault(number, heading)
    return placed


# ---- tokens -> plain text ------------------------------------------------------------------------


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    links: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "link_open":
            links.append(str(child.attrGet("href") or ""))
        elif child.type == "link_close" and links:
            href = links.pop()
            if href:
                parts.append(f" ({href})")
        elif child.type == "image":
            parts.append(child.content or "")
    return "".join(parts)


def wrap_line(text: str, indent: str = "", width: int = TEXT_WIDTH) -> str:
    """Wrap one paragraph; long tokens (URLs, addresses) are never split."""
    lines = []
    for part in text.split("\n"):
        lines.append(textwrap.fill(part, width=width, initial_indent=indent,
                                   subsequent_indent=" " * len(indent), break_long_words=False,
                                   break_on_hyphens=False) or indent.rstrip())
    return "\n".join(lines)


def _chart_of(token: Token, charts: list[ChartSpec]) -> ChartSpec | None:
    children = [c for c in token.children or [] if not (c.type == "text" and not c.content.strip())]
    if len(children) == 1 and children[0].type == "image":
        src = str(children[0].attrGet("src") or "")
        number = _reference(src, CHART_SRC_PREFIX)
        if number is not None and number < len(charts):
            return charts[number]
    return None


def tokens_to_text(tokens: list[Token], charts: list[ChartSpec] | None = None,
                   components: list[KpiStrip] | None = None) -> str:
    """A readable plain-text rendering: headings underlined, lists bulleted, tables aligned, charts as
    small tables of their figures, paragraphs wrapped to TEXT_WIDTH."""
    charts = charts or []
    components = components or []
    out: list[str] = []
    list_stack: list[list] = []  # [kind, counter]
    table_rows: list[list[str]] = []
    row: list[str] | None = None
    heading_level = 0
    in_table = False
    pending_bullet = ""

    for token in tokens:
        kind = token.type
        if kind == "heading_open":
            heading_level = int(token.tag[1])
        elif kind == "heading_close":
            heading_level = 0
        elif kind in ("bullet_list_open", "ordered_list_open"):
            list_stack.append(["bullet" if kind == "bullet_list_open" else "ordered", int(token.attrGet("start") or 1)])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            list_stack.pop()
            if not list_stack:
                out.append("")
        elif kind == "list_item_open":
            indent = "  " * (len(list_stack) - 1)
            current = list_stack[-1]
            if current[0] == "bullet":
                pending_bullet = f"{indent}- "
            else:
                pending_bullet = f"{indent}{current[1]}. "
                current[1] += 1
        elif kind == "table_open":
            in_table, table_rows = True, []
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close":
            table_rows.append(row or [])
            row = None
        elif kind == "table_close":
            in_table = False
            out.extend(_format_table(table_rows))
            out.append("")
        elif kind == "hr":
            out.extend(["-" * 40, ""])
        elif kind in ("fence", "code_block"):
            out.extend(["    " + line for line in token.content.rstrip("\n").splitlines()])
            out.append("")
        elif kind == "exec_component":
            if token.meta["index"] < len(components):
                out.extend([*(wrap_line(line, "", TEXT_WIDTH) for line in components[token.meta["index"]].text()), ""])
        elif kind == "inline":
            chart = _chart_of(token, charts)
            if chart is not None and not in_table and not heading_level:
                out.extend([*chart.text_table(), ""])
                continue
            text = _inline_text(token)
            if in_table and row is not None:
                row.append(text)
            elif heading_level:
                out.append(text.upper() if heading_level == 1 else text)
                out.append(("=" if heading_level <= 2 else "-") * min(len(text), 72))
                out.append("")
            elif pending_bullet:
                out.append(wrap_line(text, pending_bullet))
                pending_bullet = ""
            elif list_stack:
                out.append(wrap_line(text, "  " * len(list_stack)))
            else:
                out.extend([wrap_line(text), ""])
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def _format_table(rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    width = max(len(r) for r in rows)
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(width)]
    lines = []
    for index, cells in enumerate(rows):
        lines.append("  ".join((cells[i] if i < len(cells) else "").ljust(widths[i]) for i in range(width)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines
