"""A ledger export cut short (case 2 of the second hardening pass): JADA's ledger cut inside its last
row's amount, '-14' of '-1450.00' with no final newline, made cash read $14,053 instead of $12,617 and
runway 8.4 instead of 7.5 months, under both bad-row policies. Now the row is refused or left out and
reported, naming file, line and cell; a figure is never silently different."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flows.core.config import load_config
from flows.core.errors import SourceError
from flows.core.period import parse_period
from sources.ledger import gather_ledger
from sources.registry import SourceContext
from tests.conftest import SAMPLE_PERIOD

LAST_ROW = "2026-11-19,6100 Marina,Marina slip,-1450.00,Marina slip Nov 2026\n"


def jada(config_path, **overrides):
    config = load_config(config_path)
    period = parse_period(SAMPLE_PERIOD)
    context = SourceContext("jada", "JADA", period.start, period.end, config.base_dir)
    return gather_ledger({**config.tenant("jada").sources["ledger"], **overrides}, context)


def cut_the_last_amount(config_path):
    ledger = config_path.parent / "data" / "jada" / "ledger.csv"
    text = ledger.read_text(encoding="utf-8")
    assert text.endswith(LAST_ROW)
    ledger.write_text(text[:-len(LAST_ROW)] + "2026-11-19,6100 Marina,Marina slip,-14", encoding="utf-8")
    return len(text.splitlines())  # the cut row's line


def test_the_whole_ledger_gives_the_hand_checked_cash_and_runway(portfolio_copy):
    figures = jada(portfolio_copy)
    assert figures["finance.cash_on_hand"] == Decimal("12617.32")
    assert figures["finance.runway_months"] == pytest.approx(7.53, abs=0.01)


def test_a_ledger_cut_inside_its_last_amount_is_refused_under_fail_naming_file_line_and_cell(portfolio_copy):
    line = cut_the_last_amount(portfolio_copy)
    with pytest.raises(SourceError) as caught:
        jada(portfolio_copy, on_bad_row="fail")
    assert f"data/jada/ledger.csv:{line}: column 'amount': the file ends inside this row" in str(caught.value)
    assert "(value '-14')" in str(caught.value)


def test_under_skip_the_cut_row_is_left_out_and_reported_and_cash_is_the_books_without_it(portfolio_copy):
    line = cut_the_last_amount(portfolio_copy)
    figures = jada(portfolio_copy, on_bad_row="skip")
    # Without the Marina slip of Nov 19 (-1450.00): 12,617.32 + 1,450.00, never the 14,053 of '-14'.
    assert figures["finance.cash_on_hand"] == Decimal("14067.32")
    assert figures["finance.data_through"].isoformat() == "2026-11-16"
    [finding] = [p for p in figures["finance.ledger_problems"] if "cut short" in p]
    assert finding.startswith(f"data/jada/ledger.csv:{line}: column 'amount'")
