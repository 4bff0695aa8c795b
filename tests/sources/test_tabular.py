"""Reading cells the way finance exports write them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from flows.core.errors import SourceError
from sources.tabular import BadRowPolicy, RowProblem, cell_text, parse_amount, parse_date, read_rows


@pytest.mark.parametrize(("text", "expected"), [
    ("1,234.50", "1234.50"), ("$1,234.50", "1234.50"), ("-$12", "-12"), ("(12.00)", "-12.00"),
    ("USD 5", "5"), ("£7", "7"), ("-€1,000.25", "-1000.25"), (" 3 ", "3"), ("\u2212$4.25", "-4.25"),
])
def test_amounts_with_symbols_separators_and_accounting_negatives(text, expected):
    assert parse_amount(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["", "twelve", "1.2.3", "$", "--5", "12abc"])
def test_non_numbers_are_rejected(text):
    with pytest.raises(ValueError, match="not a number"):
        parse_amount(text)


def test_only_iso_dates_are_accepted():
    assert parse_date("2026-03-31") == dt.date(2026, 3, 31)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_date("03/31/2026")


def test_spreadsheet_cells_read_like_their_csv_export():
    assert cell_text(dt.datetime(2026, 9, 1)) == "2026-09-01"
    assert cell_text(dt.date(2026, 9, 1)) == "2026-09-01"
    assert cell_text(1234.5) == "1234.5"
    assert cell_text(1200.0) == "1200"
    assert cell_text(-1000.25) == "-1000.25"
    assert cell_text(0.1 + 0.2) == "0.3"
    assert cell_text(1234) == "1234"
    assert cell_text(None) == ""


def test_read_rows_handles_a_bom_and_header_case(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes("\ufeffDate,Amount\n2026-09-01,5\n".encode())
    assert list(read_rows(path, ["date", "amount"])) == [(2, {"date": "2026-09-01", "amount": "5"})]


def test_a_missing_column_names_the_file_and_what_was_found(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("when,amount\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"export.csv:1: missing column\(s\) date; found when, amount"):
        list(read_rows(path, ["date", "amount"]))


def test_a_damaged_workbook_is_a_source_error_naming_the_file(tmp_path):
    path = tmp_path / "books.xlsx"
    path.write_bytes(b"not a zip file")
    with pytest.raises(SourceError, match="books.xlsx: not a readable XLSX workbook"):
        list(read_rows(path, ["date"]))


def test_skip_policy_keeps_findings_and_fail_policy_raises():
    problem = RowProblem("ledger.csv", 7, "amount", "x", "not a number")
    skip = BadRowPolicy({"on_bad_row": "skip"}, "ledger", "acme")
    assert skip.reject([problem]) is True and skip.reject([]) is False
    assert skip.findings == ["ledger.csv:7: column 'amount': not a number (value 'x')"]
    with pytest.raises(SourceError, match="ledger.csv:7"):
        BadRowPolicy({}, "ledger", "acme").reject([problem])


def test_csv_rows_read_like_dictreader_short_rows_padded_extra_cells_and_blank_lines_dropped(tmp_path):
    from sources.tabular import read_csv_rows

    path = tmp_path / "rows.csv"
    path.write_text("\ufeffDate , Amount,Memo\n2026-01-02, 10 ,a\n\n2026-01-03,20\n2026-01-04,30,c,extra\n",
                    encoding="utf-8")
    assert list(read_csv_rows(path, ["date", "amount"])) == [
        (2, {"date": "2026-01-02", "amount": "10", "memo": "a"}),
        (4, {"date": "2026-01-03", "amount": "20", "memo": ""}),
        (5, {"date": "2026-01-04", "amount": "30", "memo": "c"}),
    ]
    unnamed = tmp_path / "unnamed.csv"
    unnamed.write_text("date,,amount\n2026-01-02,x,5\n", encoding="utf-8")
    assert list(read_csv_rows(unnamed, ["date"])) == [(2, {"date": "2026-01-02", "amount": "5"})]


def test_a_csv_without_a_final_newline_has_its_last_row_refused_as_cut_short_naming_file_line_and_cell(tmp_path):
    path = tmp_path / "ledger.csv"
    path.write_text("date,amount,memo\n2026-01-02,10,a\n2026-01-03,-14", encoding="utf-8")
    with pytest.raises(SourceError) as caught:
        list(read_rows(path, ["date", "amount"], policy=BadRowPolicy({}, "ledger", "acme")))
    assert f"{path}:3: column 'amount': the file ends inside this row" in str(caught.value)
    assert "cut short" in str(caught.value) and "(value '-14')" in str(caught.value)
    with pytest.raises(SourceError, match="ledger.csv:3: column 'amount'"):  # no policy: refused as well
        list(read_rows(path, ["date", "amount"]))


def test_under_skip_the_cut_row_is_left_out_and_reported_and_the_cached_read_keeps_each_policy(tmp_path):
    path = tmp_path / "ledger.csv"
    path.write_text("date,amount,memo\n2026-01-02,10,a\n2026-01-03,-14", encoding="utf-8")
    skip = BadRowPolicy({"on_bad_row": "skip"}, "ledger", "acme", base_dir=tmp_path)
    assert list(read_rows(path, ["date", "amount"], policy=skip)) == [
        (2, {"date": "2026-01-02", "amount": "10", "memo": "a"})]
    assert skip.findings == ["ledger.csv:3: column 'amount': the file ends inside this row, without a final "
                             "newline: the export looks cut short (export the file again) (value '-14')"]
    # The same unchanged file is now served from the per-run cache: a 'fail' reader still refuses it,
    # and a second 'skip' reader still gets its finding.
    with pytest.raises(SourceError, match="cut short"):
        list(read_rows(path, ["date", "amount"], policy=BadRowPolicy({}, "ledger", "acme")))
    again = BadRowPolicy({"on_bad_row": "skip"}, "ledger", "acme")
    assert len(list(read_rows(path, ["date", "amount"], policy=again))) == 1 and len(again.findings) == 1


def test_a_short_last_row_or_an_open_quote_at_the_end_is_cut_too_and_a_complete_file_is_not(tmp_path):
    short = tmp_path / "short.csv"
    short.write_text("date,account,amount,memo\n2026-01-02,cash,10,a\n2026-01-03,cash,-1", encoding="utf-8")
    with pytest.raises(SourceError, match=r"short.csv:3: column 'amount': .*\(value '-1'\)"):
        list(read_rows(short, ["date"], policy=BadRowPolicy({}, "x", "acme")))
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('date,memo\n2026-01-02,"fine"\n2026-01-03,"cut\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"quoted.csv:3: column 'memo'"):
        list(read_rows(quoted, ["date"], policy=BadRowPolicy({}, "x", "acme")))
    complete = tmp_path / "complete.csv"
    complete.write_text("date,amount\r\n2026-01-02,10\r\n", encoding="utf-8")
    assert list(read_rows(complete, ["date"], policy=BadRowPolicy({}, "x", "acme"))) == [
        (2, {"date": "2026-01-02", "amount": "10"})]
    closed = tmp_path / "closed.csv"  # a quoted memo that ends with a line break is closed, not cut
    closed.write_text('date,memo\n2026-01-02,"two\nlines\n"\n', encoding="utf-8")
    assert [row["memo"] for _, row in read_rows(closed, ["date"], policy=BadRowPolicy({}, "x", "acme"))] == [
        "two\nlines"]


def test_a_csv_cut_inside_its_last_character_is_cut_short_and_another_bad_byte_is_located(tmp_path):
    # Found by the ledger fuzz test (tests/sources/test_fuzz_ledger_rows.py): a cut inside "é" raised
    # UnicodeDecodeError instead of naming the cut row.
    cut = tmp_path / "cut.csv"
    cut.write_bytes("date,memo\n2026-01-02,ok\n2026-01-03,caf\u00e9".encode()[:-1])
    with pytest.raises(SourceError, match=r"cut.csv:3: column 'memo': the file ends inside this row"):
        list(read_rows(cut, ["date"], policy=BadRowPolicy({}, "x", "acme")))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("date,memo\n2026-01-02,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(SourceError, match=r"latin.csv:2: the file is not UTF-8 \(byte 0xe9 at column 15\)"):
        list(read_rows(latin, ["date"]))
