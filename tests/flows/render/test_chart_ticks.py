"""A chart's value axis reads exactly: one unit and one number of decimals for the whole axis."""

from __future__ import annotations

from flows.render.charts import tick_labels
from flows.templating.charts import CHART_TEXT_PT, CHART_WIDTH_PX, month_labels


def test_ticks_are_exact_and_alike():
    # Gridlines at 12.5k steps are never rounded half to even into "$12k, $15k, $18k".
    assert tick_labels([12500, 15000, 17500, 20000], "money") == ["$12.5k", "$15.0k", "$17.5k", "$20.0k"]
    # Never "$5.0k" beside "$10k"; zero without a unit.
    assert tick_labels([0, 5000, 10000], "money") == ["$0", "$5k", "$10k"]
    assert tick_labels([0, 20, 40], "money") == ["$0", "$20", "$40"]
    assert tick_labels([0, 0.25, 0.5], "percent") == ["0%", "25%", "50%"]
    assert tick_labels([-1500, 0, 1500], "number") == ["-1.5k", "0", "1.5k"]


def test_months_read_by_name_with_the_year_on_the_first_and_on_january():
    assert month_labels(["2026-11", "2026-12", "2027-01"]) == ["Nov 2026", "Dec", "Jan 2027"]
    assert month_labels(["Q1", "Q2"]) == ["Q1", "Q2"]


def test_chart_text_is_at_least_11_css_px_on_a_phone():
    # The image is shown at its width attribute (CHART_WIDTH_PX, within a 375 px phone's column), never
    # scaled down, and drawn at 100 dpi per CSS px: a point is 100/72 CSS px.
    assert CHART_WIDTH_PX <= 375 - 2 * 16 - 2
    assert CHART_TEXT_PT * 100 / 72 >= 11
