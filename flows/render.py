"""Markdown -> email HTML (layout + inlined CSS) and a plain-text alternative.

markdown-it-py with raw HTML off; task-list items become ☐/☑ text (mail clients drop form inputs)
and are marked so actions can be extracted later. premailer inlines the theme CSS without network
access and keeps media queries in a head ``<style>``.
"""

from __future__ import annotations

import html as html_lib
import logging
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from flows.charts import ChartSpec, InlineImage

GMAIL_CLIP_BYTES = 102 * 1024
DEFAULT_THEME_DIR = Path(__file__).resolve().parent.parent / "reports" / "theme"

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

    md.core.ruler.before("inline", "exec_reports_task_items", rule)


@lru_cache(maxsize=1)
def markdown_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(task_items_plugin)
    md.add_render_rule("table_open", _render_table_open)
    md.add_render_rule("table_close", _render_table_close)
    md.add_render_rule("image", _render_image)
    return md


def _render_table_open(self, tokens, index, options, env) -> str:
    # A wide table scrolls inside its own box on a phone; the page itself never gets wider.
    return '<div class="table-scroll">' + self.renderToken(tokens, index, options, env)


def _render_table_close(self, tokens, index, options, env) -> str:
    return self.renderToken(tokens, index, options, env) + "</div>\n"


def _render_image(self, tokens, index, options, env) -> str:
    """``![alt](chart:N)`` from the chart() helper becomes the chart's cid: image; any other image is
    dropped to its alt text (a report cannot pull images from the network)."""
    token = tokens[index]
    src = str(token.attrGet("src") or "")
    alt = self.renderInlineAsText(token.children or [], options, env)
    images: list[InlineImage] = (env or {}).get("images", [])
    if src.startswith(CHART_SRC_PREFIX) and src[len(CHART_SRC_PREFIX):].isdigit():
        number = int(src[len(CHART_SRC_PREFIX):])
        if number < len(images):
            from flows.charts import CHART_HEIGHT_PX, CHART_WIDTH_PX

            image = images[number]
            return (f'<img class="chart" src="cid:{html_lib.escape(image.content_id)}" '
                    f'width="{CHART_WIDTH_PX}" height="{CHART_HEIGHT_PX}" alt="{html_lib.escape(image.alt)}">')
    return html_lib.escape(alt)


@dataclass
class RenderedEmail:
    subject: str
    markdown: str
    html: str
    text: str
    warnings: list[str] = field(default_factory=list)
    tasks: list[dict[str, str]] = field(default_factory=list)
    images: list[InlineImage] = field(default_factory=list)  # charts, as related parts referenced by cid:
    notes: list[str] = field(default_factory=list)

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


@lru_cache(maxsize=4)
def _layout_environment(theme_dir: Path) -> Environment:
    return Environment(loader=FileSystemLoader(str(theme_dir)), autoescape=select_autoescape(default=True),
                       undefined=StrictUndefined)


@lru_cache(maxsize=4)
def _theme_css(theme_dir: Path) -> str:
    return (theme_dir / "theme.css").read_text(encoding="utf-8")


def markdown_to_html(markdown: str, images: list[InlineImage] | None = None) -> tuple[str, list[Token]]:
    md = markdown_parser()
    tokens = md.parse(markdown)
    return md.renderer.render(tokens, md.options, {"images": images or []}), tokens


@contextmanager
def stage(timings: dict[str, float] | None, name: str) -> Iterator[None]:
    """Adds the block's wall time to ``timings[name]`` (the benchmarks' per-stage breakdown)."""
    if timings is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started


def render_email(markdown: str, subject: str, *, title: str, footer: str, preheader: str = "",
                 notes: list[str] | tuple[str, ...] = (), charts: list[ChartSpec] | tuple[ChartSpec, ...] = (),
                 theme_dir: Path = DEFAULT_THEME_DIR, timings: dict[str, float] | None = None) -> RenderedEmail:
    """``notes``: plain sentences shown in the notes box under the title (what a figure leaves out,
    which entities are missing). ``charts``: the specs behind ``![..](chart:N)`` images."""
    images = [InlineImage(spec) for spec in charts]
    notes = [" ".join(str(note).split()) for note in notes if str(note).strip()]
    with stage(timings, "markdown"):
        body_html, tokens = markdown_to_html(markdown, images)
    with stage(timings, "layout"):
        layout = _layout_environment(theme_dir).get_template("layout.html")
        page = layout.render(subject=subject, title=title, preheader=preheader, footer=footer, notes=notes,
                             body=Markup(body_html), css=Markup(_theme_css(theme_dir)))
    with stage(timings, "premailer"):
        html = inline_css(page)
    with stage(timings, "text"):
        text = tokens_to_text(tokens, [image.spec for image in images])
        if notes:
            text = "\n".join(wrap_line("Note: " + note) for note in notes) + "\n\n" + text
        if footer:
            text += "\n\n-- \n" + wrap_line(footer) + "\n"
    rendered = RenderedEmail(subject=subject, markdown=markdown, html=html, text=text, tasks=extract_tasks(tokens),
                             images=images, notes=notes)
    if rendered.html_bytes > GMAIL_CLIP_BYTES:
        rendered.warnings.append(f"HTML is {rendered.html_bytes / 1024:.0f} KB; Gmail clips messages over 102 KB")
    return rendered


@lru_cache(maxsize=1)
def _premailer_class():
    import premailer.premailer as premailer_module
    from premailer import Premailer  # imported lazily: it pulls in lxml and cssutils

    # premailer merges the matched rules into a style attribute once per element; in an email of
    # tables that is thousands of cells with the same few combinations. merge_styles is a pure function
    # of its arguments (strings and lists of string pairs), so its results are memoized by value.
    merge_styles = premailer_module.merge_styles
    if not getattr(merge_styles, "exec_reports_memoized", False):
        merged: dict = {}

        def memoized_merge_styles(inline_style, new_styles, classes, remove_unset_properties=False):
            key = (inline_style, tuple(map(tuple, new_styles)), tuple(classes), remove_unset_properties)
            result = merged.get(key)
            if result is None:
                if len(merged) > 4096:  # bounded: one theme has a few dozen combinations
                    merged.clear()
                result = merged[key] = merge_styles(inline_style, new_styles, classes, remove_unset_properties)
            return result

        memoized_merge_styles.exec_reports_memoized = True
        premailer_module.merge_styles = memoized_merge_styles

    class ThemeCachingPremailer(Premailer):
        """Parses each stylesheet once per process, not once per email.

        The theme CSS is the same for every message, and parsing and re-serialising it with cssutils
        was over half of premailer's time. The cached rules are plain strings and cssutils rule
        objects that premailer only reads.
        """

        _rules_cache: dict = {}
        _leftover_text_cache: dict = {}
        _basic_attributes_cache: dict = {}

        def _parse_style_rules(self, css_body, ruleset_index):
            key = (css_body, ruleset_index, self.strip_important, self.disable_validation)
            if key not in self._rules_cache:
                self._rules_cache[key] = super()._parse_style_rules(css_body, ruleset_index)
            return self._rules_cache[key]

        def _css_rules_to_string(self, rules):
            key = tuple(id(rule) for rule in rules)
            cached = self._leftover_text_cache.get(key)
            if cached is None or cached[0] != list(rules):
                cached = (list(rules), super()._css_rules_to_string(rules))
                self._leftover_text_cache[key] = cached
            return cached[1]

        def _style_to_basic_html_attributes(self, element, style_content, force=False):
            """premailer's own (align, valign, bgcolor, width, height from the style), with the
            attributes worked out once per distinct style instead of once per element."""
            key = (style_content, tuple(self.disable_basic_attributes))
            attributes = self._basic_attributes_cache.get(key)
            if attributes is None:
                if len(self._basic_attributes_cache) > 4096:  # bounded: a theme has a few dozen styles
                    self._basic_attributes_cache.clear()
                probe = _AttributeProbe()
                super()._style_to_basic_html_attributes(probe, style_content, force=True)
                attributes = self._basic_attributes_cache[key] = tuple(probe.attrib.items())
            for key, value in attributes:
                if key in element.attrib and not force or key in self.disable_basic_attributes:
                    continue
                element.attrib[key] = value

    return ThemeCachingPremailer


class _AttributeProbe:
    """Stands in for an element: collects the attributes premailer would set."""

    def __init__(self) -> None:
        self.attrib: dict[str, str] = {}


def inline_css(html: str) -> str:
    return _premailer_class()(
        html,
        allow_network=False,
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        disable_validation=True,
        # premailer parses every image's style with cssutils to find a float (about 3 ms per chart);
        # when the page has no "float" anywhere, no image style can have one, and the result is the same.
        align_floating_images="float" in html,
        cssutils_logging_level=logging.CRITICAL,
        cssutils_logging_handler=logging.NullHandler(),
    ).transform()


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
        number = src[len(CHART_SRC_PREFIX):]
        if src.startswith(CHART_SRC_PREFIX) and number.isdigit() and int(number) < len(charts):
            return charts[int(number)]
    return None


def tokens_to_text(tokens: list[Token], charts: list[ChartSpec] | None = None) -> str:
    """A readable plain-text rendering: headings underlined, lists bulleted, tables aligned, charts as
    small tables of their figures, paragraphs wrapped to TEXT_WIDTH."""
    charts = charts or []
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


def extract_tasks(tokens: list[Token]) -> list[dict[str, str]]:
    """Task-list items of the rendered report with the heading they sit under."""
    tasks: list[dict[str, str]] = []
    heading = ""
    pending_status = None
    for index, token in enumerate(tokens):
        if token.type == "inline" and index and tokens[index - 1].type == "heading_open":
            heading = _inline_text(token)
        elif token.type == "list_item_open" and token.meta.get("task"):
            pending_status = token.meta["task"]
        elif token.type == "inline" and pending_status:
            text = _inline_text(token)
            tasks.append({"text": text[2:] if text[:1] in (OPEN_BOX, DONE_BOX) else text,
                          "status": pending_status, "heading": heading})
            pending_status = None
    return tasks
