"""Wide tables as stacked rows in the HTML part; narrow tables stay tables; the text part keeps them all."""

from __future__ import annotations

from flows.render.email import render_email

WIDE = ("| Entity | Revenue | Burn / mo | Runway |\n|---|---:|---:|---:|\n"
        "| **JADA** | $3,850 | $1,675 | 7.5 months |\n| *and 2 more* |  |  |  |\n")
NARROW = "| Entity | Revenue |\n|---|---:|\n| JADA | $3,850 |\n"
LONG_WORDS = ("| Domain | Origin | CloudFront |\n|---|---|---|\n"
              "| api.dangerouscentaur.example | api-gateway | TD7DCR6OCHUJO |\n")


def test_a_table_of_more_than_three_columns_is_stacked_rows_with_labels_in_html_only():
    rendered = render_email(WIDE, "s", title="t", footer="f")
    html = rendered.html
    assert "<table" not in html.split('class="content"', 1)[1].split('class="footer"', 1)[0]
    assert "<strong><strong>JADA</strong></strong>" in html  # the first cell is the row's title, its own markup kept
    assert "<br>Revenue: $3,850 · Burn / mo: $1,675 · Runway: 7.5 months</p>" in html
    assert "<em>and 2 more</em></strong></p>" in html  # a row with nothing else has no empty pairs
    assert "| JADA | $3,850 | $1,675 | 7.5 months |" not in rendered.text  # text part: a plain-text table
    assert "JADA" in rendered.text and "7.5 months" in rendered.text and "Burn / mo" in rendered.text


def test_a_narrow_table_stays_a_table_unless_its_long_words_cannot_sit_side_by_side():
    assert "<table" in render_email(NARROW, "s", title="t", footer="f").html.split('class="content"', 1)[1]
    long_words = render_email(LONG_WORDS, "s", title="t", footer="f").html
    assert 'class="stacked"' in long_words and "CloudFront: TD7DCR6OCHUJO" in long_words
