"""Markdown -> email HTML and plain text."""

from __future__ import annotations

import re

from flows.render.email import GMAIL_CLIP_BYTES, render_email


def test_task_list_items_become_boxes_not_form_inputs():
    rendered = render_email("## Agenda\n\n- [ ] call the marina\n- [x] file taxes\n", "s", title="t", footer="f")
    assert "<input" not in rendered.html
    assert "☐ call the marina" in rendered.html and "☑ file taxes" in rendered.html
    assert "- ☐ call the marina" in rendered.text
    assert rendered.action_headings == {}  # a task line typed by hand is text, not a recorded action


def test_a_recorded_action_is_kept_as_data_with_its_heading_and_leaves_no_trace_in_the_email():
    from flows.templating.agenda import ActionCollector

    actions = ActionCollector()
    markdown = (f"## Money\n\n{actions.action('Call the bank', 'high', '2026-12-06', 'cfo', tenant='jada')}\n\n"
                f"## Later\n\n{actions.action('File taxes', owner='accounting')}\n")
    actions.action("Built but never written into the report")
    rendered = render_email(markdown, "s", title="t", footer="f")
    assert [(a.text, a.priority, a.due, a.owner, a.tenant) for a in actions.actions[:2]] == [
        ("Call the bank", "high", "2026-12-06", "cfo", "jada"), ("File taxes", "medium", "", "accounting", "")]
    assert rendered.action_headings == {0: "Money", 1: "Later"}  # the third never reached the document
    assert "action:" not in rendered.html and "action:" not in rendered.text and "action:" not in rendered.markdown
    assert "☐ Call the bank — CFO, high priority, due Dec 6, 2026" in rendered.text


def test_raw_html_written_in_a_template_is_shown_as_text():
    rendered = render_email("<b>bold?</b>\n\n<div>block</div>\n", "s", title="t", footer="f")
    assert "<b>" not in rendered.html and "&lt;b&gt;" in rendered.html
    assert "<div>block" not in rendered.html


def test_css_is_inlined_and_the_layout_needs_no_media_queries():
    rendered = render_email("| a | b |\n|---|---:|\n| 1 | 2 |\n", "s", title="t", footer="f")
    head, body = rendered.html.split("</head>", 1)
    # Gmail's mobile webmail and Outlook ignore @media: the layout is fluid on inline styles alone.
    assert "@media" not in rendered.html
    assert re.search(r'<td [^>]*style="', body)
    # Alignment as attributes every client reads, not a style repeated on every cell.
    assert re.search(r'<td align="right" valign="top"', body) and "text-align:right" not in body.split("<td", 1)[1]
    assert "max-width:600px" in body.replace(" ", "")
    assert "<style" not in body
    # A wide table scrolls inside its own box instead of widening the page.
    assert '<div class="table-scroll" style="' in body and "overflow-x:auto" in body.replace(" ", "")


def test_plain_text_alternative_is_readable():
    markdown = "# Title\n\nSome **bold** text with [a link](https://holdings.example/x).\n\n" \
               "| Entity | Burn |\n|---|---:|\n| JADA | $1,200 |\n| QuickDumpNow | $90 |\n"
    text = render_email(markdown, "s", title="t", footer="the footer").text
    lines = text.splitlines()
    assert lines[0] == "TITLE" and lines[1] == "====="
    assert "Some bold text with a link (https://holdings.example/x)." in lines
    assert "Entity        Burn" in lines
    assert "JADA          $1,200" in lines
    assert lines[-1] == "the footer"


def test_plain_text_paragraphs_are_wrapped_but_long_tokens_and_tables_are_not():
    url = "https://holdings.example/" + "x" * 90
    markdown = ("word " * 60 + "\n\n- " + "item " * 40 + "\n\n" + url + "\n\n"
                "| Entity | A very long header that would not fit | B |\n|---|---|---|\n| JADA | " + "v" * 70 + " | 1 |\n")
    text = render_email(markdown, "s", title="t", footer="f").text
    lines = text.splitlines()
    prose = [line for line in lines if line.startswith(("word", "- item", "  item"))]
    assert len(prose) > 4 and all(len(line) <= 76 for line in prose)
    assert url in lines  # never split inside a URL
    assert any(line.startswith("JADA") and len(line) > 76 for line in lines)  # table rows stay on one line


def test_notes_come_after_the_brief_in_html_and_text():
    rendered = render_email("Body.\n", "s", title="Brief", footer="f",
                            notes=["Cash excludes 2 ledger rows that could not be read.", "  "])
    assert rendered.notes == ["Cash excludes 2 ledger rows that could not be read."]
    html = rendered.html
    assert html.index("Brief") < html.index("Body.") < html.index("About these figures") < html.index('class="note"')
    assert rendered.text.startswith("Body.\n\nAbout these figures\n\nNote: Cash excludes 2 ledger rows that could not be read.")
    assert 'class="notes"' not in render_email("Body.\n", "s", title="Brief", footer="f").html


def test_a_large_email_warns_about_gmail_clipping():
    big = "\n\n".join(f"Paragraph {i} " + "word " * 50 for i in range(600))
    rendered = render_email(big, "s", title="t", footer="f")
    assert rendered.html_bytes > GMAIL_CLIP_BYTES
    assert any("Gmail clips" in w for w in rendered.warnings)
    small = render_email("short", "s", title="t", footer="f")
    assert small.warnings == []


def test_the_faster_css_inlining_gives_premailers_own_output():
    # inline_css memoizes premailer's per-element work and skips its float probe when nothing floats;
    # on a page with aligned table columns, a chart and notes, and on one with a floating image, the
    # result must be what premailer itself produces.
    import logging

    from markupsafe import Markup
    from premailer import Premailer

    from flows.render.email import (
        DEFAULT_THEME_DIR,
        _layout_environment,
        _theme_css,
        compact_styles,
        inline_css,
    )
    from flows.render.markdown import markdown_to_html
    from flows.templating.charts import make_spec

    chart = make_spec("column", "Revenue", labels=["Oct", "Nov"], series={"Revenue": [1.0, 2.0]})
    body, _ = markdown_to_html("| name | amount |\n|:---|---:|\n| a | 1 |\n\n![Revenue](chart:0)\n", [chart])
    page = _layout_environment(DEFAULT_THEME_DIR).get_template("layout.html").render(
        subject="s", title="t", preheader="", footer="f", notes=["a note"], body=Markup(body),
        css=Markup(_theme_css(DEFAULT_THEME_DIR)))
    floating = page.replace("img.chart {", "img.chart { float: right;")
    for html in (page, floating):
        expected = Premailer(html, allow_network=False, strip_important=False, keep_style_tags=False,
                             remove_classes=False, disable_validation=True, cssutils_logging_level=logging.CRITICAL,
                             cssutils_logging_handler=logging.NullHandler()).transform()
        # The same declarations, written without the spaces premailer puts after ";" and ":".
        assert inline_css(html) == compact_styles(expected)
        assert "; " not in "".join(re.findall(r'style="([^"]*)"', inline_css(html)))
    assert 'align="right"' in inline_css(floating).split("<img", 1)[1].split(">", 1)[0]
    assert 'align="right"' not in inline_css(page).split("<img", 1)[1].split(">", 1)[0]
