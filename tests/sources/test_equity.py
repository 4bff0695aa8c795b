"""Equity source: the balance sheet and the cap table, worked by hand from small files."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from flows.core.errors import SourceError
from sources.catalogue import SourceContext, Unavailable
from sources.equity import gather_equity

SHEET = """\
as_of,section,item,amount
2026-08-31,cash,Bank,10000
2026-08-31,asset,Van,20000
2026-08-31,liability,Van loan,15000
2026-08-31,equity,Owner capital,15000
2026-09-30,cash,Bank,"8,500.00"
2026-09-30,asset,Van,19500
2026-09-30,liability,Van loan,14600
2026-09-30,liability,Owner loan,20000
2026-09-30,equity,Owner capital,15000
2026-09-30,equity,Accumulated deficit,(21600)
2026-10-31,cash,Bank,1
"""


def context(tmp_path) -> SourceContext:
    return SourceContext("acme", "Acme", dt.date(2026, 9, 24), dt.date(2026, 9, 30), tmp_path)


def gather(tmp_path, sheet: str = SHEET, cap_table: str | None = None, **settings):
    (tmp_path / "balance_sheet.csv").write_text(sheet, encoding="utf-8")
    if cap_table is not None:
        (tmp_path / "cap_table.csv").write_text(cap_table, encoding="utf-8")
        settings["cap_table"] = "cap_table.csv"
    return gather_equity({"balance_sheet": "balance_sheet.csv", **settings}, context(tmp_path))


def test_the_latest_close_on_or_before_the_period_end_is_used_and_totalled(tmp_path):
    figures = gather(tmp_path)
    assert figures["equity.as_of"] == dt.date(2026, 9, 30)  # Oct 31 is after the period end
    assert figures["equity.cash"] == Decimal("8500.00")
    assert figures["equity.total_assets"] == Decimal("28000.00")          # 8,500 + 19,500
    assert figures["equity.total_liabilities"] == Decimal("34600")        # 14,600 + 20,000
    assert figures["equity.book_equity"] == Decimal("-6600.00")           # liabilities exceed assets
    assert figures["equity.balance_difference"] == Decimal("0")           # 15,000 - 21,600 = -6,600
    assert figures["equity.liabilities_percent_of_assets"] == 123.6       # 34,600 / 28,000
    assert len(figures["equity.balance_sheet"]) == 6


def test_a_sheet_whose_equity_lines_do_not_match_reports_the_difference(tmp_path):
    figures = gather(tmp_path, SHEET.replace("(21600)", "(21000)"))
    assert figures["equity.balance_difference"] == Decimal("600.00")  # -6,000 reported vs -6,600


def test_a_sheet_without_equity_lines_cannot_say_whether_it_balances(tmp_path):
    sheet = "\n".join(line for line in SHEET.splitlines() if ",equity," not in line) + "\n"
    assert isinstance(gather(tmp_path, sheet)["equity.balance_difference"], Unavailable)


def test_a_cap_table_by_shares_adds_each_holders_classes(tmp_path):
    figures = gather(tmp_path, cap_table="holder,share_class,shares\nHoldco,Common,600\nAna,Common,300\n"
                                         "Ana,Preferred,\"100\"\n")
    assert figures["equity.cap_table_holders"] == 2
    assert figures["equity.ownership_total_percent"] == 100.0
    assert figures["equity.largest_holder"] == "Holdco" and figures["equity.largest_holder_percent"] == 60.0
    assert [(r["holder"], r["share_class"], r["ownership_percent"]) for r in figures["equity.cap_table"]] == [
        ("Holdco", "Common", 60.0), ("Ana", "Common", 30.0), ("Ana", "Preferred", 10.0)]


def test_a_cap_table_by_percent_keeps_the_recorded_total_even_when_it_is_not_100(tmp_path):
    figures = gather(tmp_path, cap_table="holder,share_class,ownership_percent\nHoldco,Common,55\nBen,Common,30%\n")
    assert figures["equity.ownership_total_percent"] == 85.0
    assert figures["equity.largest_holder_percent"] == 55.0


def test_no_cap_table_on_record_counts_zero_holders(tmp_path):
    figures = gather(tmp_path)
    assert figures["equity.cap_table_holders"] == 0 and figures["equity.ownership_total_percent"] == 0.0
    assert figures["equity.largest_holder"].plain == "no cap table on record"


def test_a_missing_balance_sheet_file_costs_only_the_balance_sheet_metrics(tmp_path):
    (tmp_path / "cap_table.csv").write_text("holder,share_class,shares\nHoldco,Common,1\n", encoding="utf-8")
    figures = gather_equity({"balance_sheet": "nowhere.csv", "cap_table": "cap_table.csv"}, context(tmp_path))
    assert isinstance(figures["equity.book_equity"], Unavailable)
    assert figures["equity.largest_holder_percent"] == 100.0


def test_a_sheet_dated_only_after_the_period_is_unavailable_saying_so(tmp_path):
    figures = gather(tmp_path, "as_of,section,item,amount\n2026-12-31,cash,Bank,5\n")
    assert "no balance sheet dated on or before 2026-09-30 (the first is 2026-12-31)" in figures["equity.book_equity"].reason


@pytest.mark.parametrize(("sheet", "cap", "message"), [
    ("as_of,section,item,amount\n2026-09-30,equty,Bank,5\n", None,
     "balance_sheet.csv:2: column 'section': expected one of cash, asset, liability, equity (value 'equty')"),
    ("as_of,section,item,amount\n2026-09-30,cash,Bank,five\n", None,
     "balance_sheet.csv:2: column 'amount': not a number (value 'five')"),
    (SHEET, "holder,share_class,shares\nHoldco,Common,1.5\n",
     "cap_table.csv:2: column 'shares': not a whole number above 0 (value '1.5')"),
    (SHEET, "holder,share_class,ownership_percent\nHoldco,Common,120\n",
     "cap_table.csv:2: column 'ownership_percent': not a percent above 0 and at most 100 (value '120')"),
    (SHEET, "holder,share_class,stake\nHoldco,Common,1\n", "cap_table.csv:1: needs a shares or an ownership_percent column"),
])
def test_a_bad_row_fails_naming_file_line_column_and_value(tmp_path, sheet, cap, message):
    with pytest.raises(SourceError) as caught:
        gather(tmp_path, sheet, cap)
    assert message in str(caught.value)


def test_under_skip_a_bad_line_is_left_out_and_listed(tmp_path):
    figures = gather(tmp_path, SHEET + "2026-09-30,asset,Mystery,lots\n", on_bad_row="skip")
    assert figures["equity.total_assets"] == Decimal("28000.00")
    assert figures["equity.problems"] == ["balance_sheet.csv:13: column 'amount': not a number (value 'lots')"]


def test_a_balance_sheet_older_than_max_age_days_is_marked_out_of_date(tmp_path):
    # Period ends Sep 30, 2026; a sheet whose latest close is Aug 31, 2025 is 395 days old (365 + 30).
    old = "as_of,section,item,amount\n2025-08-31,cash,Bank,100\n"
    figures = gather(tmp_path, old)
    assert figures["equity.age_days"] == 395 and figures["equity.out_of_date"] is True
    assert figures["equity.cash"] == Decimal("100")  # still shown, marked by the report
    # The Sep 30 close is 0 days old; Aug 31 with a 20-day limit is 30 days old: out of date.
    assert gather(tmp_path)["equity.out_of_date"] is False
    figures = gather(tmp_path, SHEET.replace("2026-09-30", "2026-07-01"), max_age_days=20)
    assert figures["equity.as_of"] == dt.date(2026, 8, 31) and figures["equity.age_days"] == 30
    assert figures["equity.out_of_date"] is True
    with pytest.raises(SourceError, match=r"sources\.equity\.max_age_days: expected a whole number of days, at "
                                          r"least 1, got 'soon'"):
        gather(tmp_path, max_age_days="soon")
