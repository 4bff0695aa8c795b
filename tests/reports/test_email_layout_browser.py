"""Every email of the sample run, opened in headless Chromium as a phone and a desktop webmail show it.

At 375 px with the <style> block removed (Gmail's mobile webmail, Outlook, gateways that strip it):
the page never scrolls sideways (wide tables scroll inside their own box) and no table cell breaks a
short word ("Sev|eri|ty"). At 600 px with styles: the same, and every chart image loads.

Chromium is Debian's package (.ci/run installs it); Playwright only drives it. Without it the test
is skipped locally and fails on CI, where CI=true.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.synthetic import make_portfolio
from flows.core.config import load_config
from flows.core.period import parse_period
from flows.delivery.outbox import OutboxBackend
from flows.devtools.email_layout import browser, chromium_path, measure
from flows.orchestrator.run import run_plain
from flows.templating.charts import CHART_WIDTH_PX
from tests.conftest import SAMPLE_CONFIG, SAMPLE_PERIOD

if chromium_path() is None:
    if os.environ.get("CI"):
        raise RuntimeError("Chromium is missing on CI: .ci/run must apt-get install chromium")
    pytest.skip("no Chromium here (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def previews(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("outbox")
    summary, _ = run_plain(load_config(SAMPLE_CONFIG), parse_period(SAMPLE_PERIOD), backend=OutboxBackend(folder))
    assert summary["failed"] == []
    files = sorted(folder.glob("*.html"))
    assert len(files) == 9
    return files


@pytest.fixture(scope="module")
def previews_of_100_entities(tmp_path_factory) -> list[Path]:
    """The portfolio briefs of bench.synthetic's 100-entity portfolio, charts drawn, as the outbox writes them."""
    folder = tmp_path_factory.mktemp("outbox100")
    config = load_config(make_portfolio(100, tmp_path_factory.mktemp("portfolio100"), with_tenant_report=False))
    summary, _ = run_plain(config, parse_period(SAMPLE_PERIOD), backend=OutboxBackend(folder))
    assert summary["failed"] == []
    return sorted(folder.glob("portfolio-*.html"))


@pytest.fixture(scope="module")
def chromium():
    with browser() as instance:
        yield instance


def test_at_375_px_without_the_style_block_nothing_overflows_and_no_short_word_breaks(previews, chromium):
    for path in previews:
        html = path.read_text(encoding="utf-8")
        # Today premailer inlines the whole theme and no <style> block is left; if a theme adds one
        # (a media query, a dark-mode rule), the email must still hold without it.
        report = measure(chromium, html, width=375, styles=False, name=path.name)
        assert report.scroll_width <= 375, f"{path.name}: page is {report.scroll_width} px wide at 375 px"
        assert report.broken_words == [], f"{path.name}: words broken inside table cells: {report.broken_words[:5]}"


def test_at_375_px_without_overflow_and_without_styles_no_table_spills_and_images_fit_the_column(previews, chromium):
    """Outlook for Windows, Windows Mail and Outlook for Android ignore overflow and overflow-wrap: a wide
    table would spill past the screen there. A table of more than 3 columns is drawn as stacked rows."""
    column = 375 - 2 * 16 - 2  # the container's padding and border
    for path in previews:
        report = measure(chromium, path.read_text(encoding="utf-8"), width=375, styles=False, overflow=False,
                         name=path.name)
        assert report.scroll_width <= 375, f"{path.name}: page is {report.scroll_width} px wide"
        assert report.spilling_tables == [], f"{path.name}: tables wider than the screen: {report.spilling_tables}"
        for image in report.images:
            # The width attribute is what Outlook for Windows draws at: it must fit the phone's column.
            assert 0 < image["widthAttribute"] <= column, (path.name, image)
            assert image["width"] <= column, (path.name, image)


def test_at_600_px_with_styles_nothing_overflows_and_charts_load(previews, chromium):
    charts = 0
    for path in previews:
        report = measure(chromium, path.read_text(encoding="utf-8"), width=600, styles=True, name=path.name)
        assert report.scroll_width <= 600, f"{path.name}: page is {report.scroll_width} px wide"
        assert report.broken_words == [], f"{path.name}: {report.broken_words[:5]}"
        for image in report.images:
            assert image["loaded"] and image["alt"], (path.name, image)
            assert image["width"] == image["widthAttribute"] == CHART_WIDTH_PX, (path.name, image)
        charts += len(report.images)
    assert charts == 5  # the CEO brief and each GM brief


def test_the_measurement_catches_a_layout_that_overflows_and_breaks_words(chromium):
    """The two checks above can fail: a fixed-width page and a one-letter-wide column trip them."""
    wide = '<html><body><table style="width:640px"><tr><td>Revenue</td></tr></table></body></html>'
    assert measure(chromium, wide, width=375, styles=False).scroll_width > 375
    narrow = ('<html><body><table><tr><td style="width:8px;max-width:8px;overflow-wrap:anywhere">Severity</td>'
              '<td>x</td></tr></table></body></html>')
    broken = measure(chromium, narrow, width=375, styles=False).broken_words
    assert [item["word"] for item in broken] == ["Severity"]
    # A wide table in a scrolling box holds only where overflow works: without it, it spills.
    boxed = ('<html><head><meta name="viewport" content="width=device-width, initial-scale=1"></head><body>'
             '<div style="width:100%;overflow-x:auto"><table style="width:640px"><tr><td>Revenue'
             '</td></tr></table></div></body></html>')
    assert measure(chromium, boxed, width=375, styles=False).scroll_width <= 375
    assert measure(chromium, boxed, width=375, styles=False, overflow=False).scroll_width > 375


# What a portfolio brief may take on a 375 x 667 phone (issue 25): its first screen, then the summary.
PHONE_SCREENS_AT_4_ENTITIES, PHONE_SCREENS_AT_100_ENTITIES = 6.0, 10.0


def test_each_portfolio_brief_fits_6_phone_screens_at_4_entities_and_10_at_100(previews, previews_of_100_entities,
                                                                                chromium):
    """Measured as the shortest phone shows it: 375 px, without the <style> block and without overflow."""
    limits = {4: PHONE_SCREENS_AT_4_ENTITIES, 100: PHONE_SCREENS_AT_100_ENTITIES}
    screens = {}
    for paths, size in ((previews, 4), (previews_of_100_entities, 100)):
        portfolio = [path for path in paths if path.name.startswith("portfolio-")]
        assert len(portfolio) == 5, [path.name for path in paths]
        for path in portfolio:
            report = measure(chromium, path.read_text(encoding="utf-8"), width=375, styles=False, overflow=False,
                             name=path.name)
            assert report.scroll_width <= 375 and report.spilling_tables == [], (size, path.name)
            screens[(size, path.name.split("--")[0])] = report.phone_screens
    too_long = {key: value for key, value in screens.items() if value > limits[key[0]]}
    assert too_long == {}, f"phone screens over the limit: {too_long} (all: {screens})"
