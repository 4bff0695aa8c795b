"""The email: the rendered Markdown in the theme's layout with its CSS inlined (premailer, no network),
a plain-text alternative, and the charts drawn to PNG. ``render_email`` returns a finished
``RenderedEmail``; delivery only builds the MIME message around it."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from flows.core.addresses import strip_bidi
from flows.render.charts import InlineImage
from flows.render.markdown import (
    action_headings,
    markdown_to_html,
    readable_markdown,
    tokens_to_text,
    wrap_line,
)
from flows.templating.charts import ChartSpec
from flows.templating.components import KpiStrip

GMAIL_CLIP_BYTES = 102 * 1024
DEFAULT_THEME_DIR = Path(__file__).resolve().parents[2] / "reports" / "theme"


@dataclass
class RenderedEmail:
    subject: str
    markdown: str
    html: str
    text: str
    warnings: list[str] = field(default_factory=list)
    # The report's agenda as data: text, owner role, tenant, priority, due, heading, report.
    actions: list[dict[str, str]] = field(default_factory=list)
    images: list[InlineImage] = field(default_factory=list)  # charts drawn, as related parts referenced by cid:
    charts: list[ChartSpec] = field(default_factory=list)  # what the template declared (the images' specs)
    notes: list[str] = field(default_factory=list)
    # Where each of the template's recorded actions landed: action number -> the heading above it.
    action_headings: dict[int, str] = field(default_factory=dict)

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
                 theme_dir: Path = DEFAULT_THEME_DIR, timings: dict[str, float] | None = None,
                 draw_charts: bool = True, components: list[KpiStrip] | tuple[KpiStrip, ...] = ()) -> RenderedEmail:
    """``notes``: plain sentences shown in the notes box after the brief (what a figure leaves out,
    which entities are missing). ``charts``: the specs behind ``![..](chart:N)`` images, drawn to PNG
    here unless ``draw_charts`` is false (``check`` renders every report but sends none)."""
    # Every text that reaches the email loses its bidirectional controls here, whatever helper or note
    # carried it: a right-to-left override from data would make the rest of its line read backwards.
    markdown, subject, title, footer, preheader = map(strip_bidi, (markdown, subject, title, footer, preheader))
    charts = [without_bidi(spec) for spec in charts]
    components = [without_bidi(component) for component in components]
    notes = [" ".join(strip_bidi(str(note)).split()) for note in notes if str(note).strip()]
    with stage(timings, "markdown"):
        body_html, tokens = markdown_to_html(markdown, charts, list(components))
    with stage(timings, "layout"):
        layout = _layout_environment(theme_dir).get_template("layout.html")
        page = layout.render(subject=subject, title=title, preheader=preheader, footer=footer, notes=notes,
                             body=Markup(body_html), css=Markup(_theme_css(theme_dir)))
    with stage(timings, "premailer"):
        html = inline_css(page)
    with stage(timings, "text"):
        text = tokens_to_text(tokens, charts, list(components))
        if notes:  # after the brief, as in the HTML part
            text = (text.rstrip("\n") + "\n\nAbout these figures\n\n"
                    + "\n".join(wrap_line("Note: " + note) for note in notes))
        if footer:
            text += "\n\n-- \n" + wrap_line(footer) + "\n"
    with stage(timings, "charts"):
        images = [InlineImage.draw(spec) for spec in charts] if draw_charts else []
    rendered = RenderedEmail(subject=subject, markdown=readable_markdown(markdown, list(components)), html=html, text=text,
                             images=images, charts=charts, notes=notes,
                             action_headings=action_headings(tokens))
    if rendered.html_bytes > GMAIL_CLIP_BYTES:
        rendered.warnings.append(f"HTML is {rendered.html_bytes / 1024:.0f} KB; Gmail clips messages over 102 KB")
    return rendered


def without_bidi(value):
    """A chart spec or component (frozen dataclasses of text, numbers and tuples) with every text in it
    stripped of bidirectional controls."""
    if isinstance(value, str):
        return strip_bidi(value)
    if isinstance(value, tuple | list):
        return type(value)(without_bidi(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: without_bidi(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    return value


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


_STYLE_ATTRIBUTE = re.compile(r'(\sstyle=")([^"]*)(")')


def compact_styles(html: str) -> str:
    """premailer writes "a:b; c:d"; the same declarations without the spaces after ";" and ":" are smaller
    (inline styles are most of an email's HTML and Gmail clips an email at 102 KB)."""
    return _STYLE_ATTRIBUTE.sub(lambda m: m.group(1) + re.sub(r"\s*([;:])\s*", r"\1", m.group(2)).rstrip(";")
                                + m.group(3), html)


def inline_css(html: str) -> str:
    return compact_styles(_inline_css(html))


def _inline_css(html: str) -> str:
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
