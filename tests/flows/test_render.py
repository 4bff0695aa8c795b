"""Markdown -> email HTML and plain text."""

from __future__ import annotations

from flows.render import GMAIL_CLIP_BYTES, render_email


def test_task_list_items_become_boxes_not_form_inputs():
    rendered = render_email("## Agenda\n\n- [ ] call the marina\n- [x] file taxes\n", "s", title="t", footer="f")
    assert "<input" not in rendered.html
    assert "☐ call the marina" in rendered.html and "☑ file taxes" in rendered.html
    assert rendered.tasks == [
        {"text": "call the marina", "status": "open", "heading": "Agenda"},
        {"text": "file taxes", "status": "done", "heading": "Agenda"},
    ]
    assert "- ☐ call the marina" in rendered.text


def test_raw_html_written_in_a_template_is_shown_as_text():
    rendered = render_email("<b>bold?</b>\n\n<div>block</div>\n", "s", title="t", footer="f")
    assert "<b>" not in rendered.html and "&lt;b&gt;" in rendered.html
    assert "<div>block" not in rendered.html


def test_css_is_inlined_and_media_queries_survive_in_the_head():
    rendered = render_email("| a | b |\n|---|---|\n| 1 | 2 |\n", "s", title="t", footer="f")
    head, body = rendered.html.split("</head>", 1)
    assert "@media" in head and "!important" in head
    assert '<td style="' in body
    assert "<style" not in body


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


def test_a_large_email_warns_about_gmail_clipping():
    big = "\n\n".join(f"Paragraph {i} " + "word " * 50 for i in range(600))
    rendered = render_email(big, "s", title="t", footer="f")
    assert rendered.html_bytes > GMAIL_CLIP_BYTES
    assert any("Gmail clips" in w for w in rendered.warnings)
    small = render_email("short", "s", title="t", footer="f")
    assert small.warnings == []
