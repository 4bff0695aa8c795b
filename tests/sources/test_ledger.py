"""Ledger source: figures checked against sums worked out by hand from tests/fixtures/business."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from flows.core.errors import SourceError
from sources.catalogue import REGISTRY, SourceContext, Unavailable
from sources.ledger import gather_ledger
from sources.registry import is_available

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "business"
SEPTEMBER = (dt.date(2026, 9, 1), dt.date(2026, 9, 30))


def context(base_dir: Path = FIXTURES, period=SEPTEMBER) -> SourceContext:
    return SourceContext("acme", "Acme", period[0], period[1], base_dir)


def test_monthly_figures_burn_cash_and_runway_match_the_hand_worked_sums():
    # Jul: +1000 -1000; Aug: +1200 -1000 -300; Sep: +800 -1000 -100 -250; Oct row is after the period.
    figures = gather_ledger({"path": "ledger.csv", "opening_balance": 5000}, context())
    assert figures["finance.monthly"] == [
        {"month": "2026-07", "revenue": Decimal("1000"), "expenses": Decimal("1000"), "net": Decimal("0"),
         "draws": Decimal("0")},
        {"month": "2026-08", "revenue": Decimal("1200"), "expenses": Decimal("1300"), "net": Decimal("-100"),
         "draws": Decimal("0")},
        {"month": "2026-09", "revenue": Decimal("800"), "expenses": Decimal("1350"), "net": Decimal("-550"),
         "draws": Decimal("0")},
    ]
    # Burn = (3650 expenses - 3000 revenue) / 3 months = 216.67; cash = 5000 + 3000 - 3650 = 4350.
    assert figures["finance.burn_rate"] == Decimal("216.67")
    assert figures["finance.cash_on_hand"] == Decimal("4350")
    assert figures["finance.runway_months"] == pytest.approx(4350 / (650 / 3))
    assert figures["finance.revenue_last_month"] == Decimal("800")
    assert figures["finance.expenses_last_month"] == Decimal("1350")
    assert figures["finance.expenses_by_category"] == [
        {"category": "Rent", "amount": Decimal("1000")},
        {"category": "Uncategorised", "amount": Decimal("250")},
        {"category": "Fuel", "amount": Decimal("100")},
    ]


def test_an_overdrawn_business_has_zero_runway_not_a_negative_one():
    figures = gather_ledger({"path": "ledger.csv", "opening_balance": -5000}, context())
    assert figures["finance.cash_on_hand"] == Decimal("-5650")
    assert figures["finance.runway_months"] == 0.0


def test_expense_audit_compares_the_month_with_the_average_and_flags_big_changes():
    settings = {"path": "ledger.csv", "audit": {"average_months": 2, "largest": 2, "flag_change_percent": 25}}
    figures = gather_ledger(settings, context())
    audit = {row["category"]: row for row in figures["finance.expense_audit"]}
    # Rent: 1000 against (1000 + 1000) / 2 -> unchanged.
    assert audit["Rent"]["change"] == Decimal("0") and audit["Rent"]["flagged"] is False
    # Fuel: 100 against (0 + 300) / 2 = 150 -> -50, -33.3 %, beyond 25 %.
    assert audit["Fuel"]["average"] == Decimal("150.00")
    assert audit["Fuel"]["change"] == Decimal("-50.00")
    assert audit["Fuel"]["change_percent"] == -33.3
    assert audit["Fuel"]["flagged"] is True
    # A category with no history has no percentage and is always flagged.
    assert audit["Uncategorised"]["change_percent"] is None and audit["Uncategorised"]["flagged"] is True
    assert [(row["category"], row["amount"]) for row in figures["finance.largest_expenses"]] == [
        ("Rent", Decimal("1000")), ("Uncategorised", Decimal("250"))]
    assert figures["finance.uncategorised_expenses"] == [
        {"date": dt.date(2026, 9, 25), "account": "6200 Fuel", "amount": Decimal("250"), "memo": "card payment",
         "where": "ledger.csv:10"}]


def test_revenue_targets_run_from_january_through_the_next_years_first_quarter():
    figures = gather_ledger({"path": "ledger.csv", "targets": "targets.csv"}, context())
    rows = {row["month"]: row for row in figures["finance.revenue_targets"]}
    assert list(rows)[0] == "2026-01" and list(rows)[-1] == "2027-03" and len(rows) == 15
    assert rows["2026-07"]["status"] == "met" and rows["2026-07"]["difference"] == Decimal("0")
    assert rows["2026-08"]["status"] == "missed" and rows["2026-08"]["difference"] == Decimal("-300")
    assert rows["2026-09"]["actual"] == Decimal("800") and rows["2026-09"]["status"] == "missed"
    assert rows["2026-10"] == {"month": "2026-10", "target": None, "actual": None, "difference": None,
                               "status": "no target"}
    assert rows["2027-03"]["status"] == "upcoming" and rows["2027-03"]["actual"] is None
    # September: 800 of a 1,000 target.
    assert figures["finance.revenue_target_attainment"] == 80.0


def test_the_current_partial_month_is_in_progress_against_its_target(tmp_path):
    shutil.copy(FIXTURES / "ledger.csv", tmp_path / "ledger.csv")
    (tmp_path / "targets.csv").write_text("month,target\n2026-10,1000\n", encoding="utf-8")
    figures = gather_ledger({"path": "ledger.csv", "targets": "targets.csv"},
                            context(tmp_path, (dt.date(2026, 10, 5), dt.date(2026, 10, 11))))
    october = next(row for row in figures["finance.revenue_targets"] if row["month"] == "2026-10")
    assert october["status"] == "in progress" and october["actual"] == Decimal("400")


def test_break_even_units_are_fixed_costs_over_contribution_margin():
    settings = {"path": "charters.csv", "unit_economics": {
        "unit": "charter", "revenue_account": "4000 Charters", "variable_categories": ["Fuel", "Captain"],
        "excluded_categories": ["Owner draw"]}}
    figures = gather_ledger(settings, context())
    # 6 charters at 1,500; fuel 100 + captain 200 each -> margin 1,200; fixed 3,000 + 1,200 a month
    # (the owner draw is excluded) -> 4,200 / 1,200 = 3.5 charters a month.
    assert figures["finance.unit_economics"] == {
        "unit": "charter", "months": 3, "units_sold": 6, "units_per_month": 2.0,
        "price_per_unit": Decimal("1500.00"), "variable_cost_per_unit": Decimal("300.00"),
        "contribution_margin": Decimal("1200.00"), "fixed_monthly_costs": Decimal("4200.00")}
    assert figures["finance.break_even_units"] == 3.5


def test_break_even_is_unavailable_when_no_units_were_sold_or_it_is_not_configured():
    figures = gather_ledger({"path": "charters.csv", "unit_economics": {"revenue_account": "4999 Nothing"}},
                            context())
    assert isinstance(figures["finance.break_even_units"], Unavailable)
    assert "4999 Nothing" in figures["finance.break_even_units"].reason
    figures = gather_ledger({"path": "charters.csv"}, context())
    assert "unit_economics is not set" in figures["finance.unit_economics"].reason


def test_financial_rules_pass_or_fail_with_their_figures():
    rules = [{"rule": "min_reserve_months", "months": 3},
             {"rule": "max_uncategorised_expense", "amount": 200},
             {"rule": "max_burn_rate", "amount": 200}]
    figures = gather_ledger({"path": "ledger.csv", "opening_balance": 5000, "rules": rules}, context())
    reserve, uncategorised, burn = figures["finance.rules"]
    # 4,350 cash / (3,650 / 3 = 1,216.67 average expenses) = 3.58 -> 3.6 months >= 3.
    assert (reserve["status"], reserve["actual"]) == ("pass", Decimal("3.6"))
    assert (uncategorised["status"], uncategorised["actual"]) == ("fail", Decimal("250"))
    assert "ledger.csv:10" in uncategorised["detail"]
    assert (burn["status"], burn["actual"]) == ("fail", Decimal("216.67"))
    assert figures["finance.rules_failed"] == 2


def test_owner_draw_rule_is_the_share_of_revenue_over_the_last_three_months():
    rule = {"rule": "max_owner_draw_percent", "percent": 5, "category": "Owner draw"}
    figures = gather_ledger({"path": "charters.csv", "rules": [rule]}, context())
    # 500 of 9,000 revenue = 5.6 % > 5 %.
    assert figures["finance.rules"][0]["status"] == "fail"
    assert figures["finance.rules"][0]["actual"] == Decimal("5.6")


def test_an_unknown_rule_makes_the_rules_unavailable_naming_the_key():
    figures = gather_ledger({"path": "ledger.csv", "rules": [{"rule": "max_burn_rate", "amount": 1},
                                                             {"rule": "keep_smiling"}]}, context())
    assert isinstance(figures["finance.rules"], Unavailable)
    assert "sources.ledger.rules[1].rule" in figures["finance.rules"].reason
    assert "keep_smiling" in figures["finance.rules"].reason
    assert isinstance(figures["finance.burn_rate"], Decimal)


def test_chart_of_accounts_totals_and_no_unknown_accounts_for_a_clean_ledger():
    figures = gather_ledger({"path": "ledger.csv", "accounts": "accounts.csv"}, context())
    assert figures["finance.unknown_accounts"] == []
    totals = {row["account"]: row["amount"] for row in figures["finance.account_totals"]}
    assert totals == {"4000 Sales": Decimal("800"), "6100 Rent": Decimal("-1000"), "6200 Fuel": Decimal("-350")}


def test_a_bad_row_fails_the_source_naming_file_line_column_and_value():
    with pytest.raises(SourceError) as caught:
        gather_ledger({"path": "bad_rows.csv"}, context())
    assert "bad_rows.csv:3: column 'date'" in str(caught.value) and "'2026-09-31'" in str(caught.value)


def test_an_unknown_account_fails_the_source_under_the_fail_policy(tmp_path):
    (tmp_path / "only_unknown.csv").write_text(
        "date,account,category,amount,memo\n2026-09-03,9999 Mystery,Rent,-10.00,x\n", encoding="utf-8")
    shutil.copy(FIXTURES / "accounts.csv", tmp_path / "accounts.csv")
    with pytest.raises(SourceError, match=r"only_unknown.csv:2: column 'account': not in the chart of accounts "
                                          r"\(value '9999 Mystery'\)"):
        gather_ledger({"path": "only_unknown.csv", "accounts": "accounts.csv"}, context(tmp_path))


def test_skip_policy_leaves_bad_rows_out_and_lists_each_one():
    # The fixture's one good row is from early September: allow it to be that old at the month's end.
    figures = gather_ledger({"path": "bad_rows.csv", "accounts": "accounts.csv", "on_bad_row": "skip",
                             "max_data_age_days": 60}, context())
    problems = figures["finance.ledger_problems"]
    assert len(problems) == 3
    # Shown relative to the config folder, as the config names the file.
    assert problems[0].startswith("bad_rows.csv:3: column 'date'") and "'2026-09-31'" in problems[0]
    assert "bad_rows.csv:4: column 'amount'" in problems[1] and "'twelve'" in problems[1]
    assert "bad_rows.csv:5: column 'account'" in problems[2] and "'9999 Mystery'" in problems[2]
    assert figures["finance.unknown_accounts"] == [{"account": "9999 Mystery", "entries": 1,
                                                    "first_seen": "bad_rows.csv:5"}]
    # Only the one good row counts.
    assert figures["finance.cash_on_hand"] == Decimal("100")


def test_a_tenants_earlier_periods_read_the_ledger_once_and_see_the_same_rows_and_problems(tmp_path, monkeypatch):
    """A report that compares with earlier periods gathers the ledger for each; the file is read once for
    them, and each period still gets every skipped row and problem. An edited file is read again."""
    import sources.ledger as ledger

    for name in ("bad_rows.csv", "accounts.csv"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    reads = []
    real_read = ledger.read_ledger
    monkeypatch.setattr(ledger, "read_ledger", lambda *args, **kwargs: reads.append(args[0]) or real_read(*args,
                                                                                                         **kwargs))
    settings = {"path": "bad_rows.csv", "accounts": "accounts.csv", "on_bad_row": "skip", "max_data_age_days": 400}
    periods = [SEPTEMBER, (dt.date(2026, 8, 1), dt.date(2026, 8, 31)), (dt.date(2025, 9, 1), dt.date(2025, 9, 30))]
    figures = [gather_ledger(settings, context(tmp_path, period)) for period in periods]
    assert len(reads) == 1
    for each in figures:
        assert len(each["finance.ledger_problems"]) == 3 and len(each["finance.unreadable_rows"]) == 3
    assert figures[0]["finance.unreadable_rows"] is not figures[1]["finance.unreadable_rows"]
    # Another tenant, or the same file changed, is read again.
    gather_ledger(settings, SourceContext("other", "Other", *SEPTEMBER, tmp_path))
    (tmp_path / "bad_rows.csv").write_text((tmp_path / "bad_rows.csv").read_text() + "\n")
    gather_ledger(settings, context(tmp_path))
    assert len(reads) == 3


def test_an_unknown_policy_is_a_clear_error():
    with pytest.raises(SourceError, match="on_bad_row must be 'fail' or 'skip'"):
        gather_ledger({"path": "ledger.csv", "on_bad_row": "ignore"}, context())


def test_a_missing_ledger_makes_every_metric_unavailable_with_the_path():
    values = REGISTRY.gather("ledger", ["finance.burn_rate", "finance.cash_on_hand"],
                             {"path": "no-such-ledger.csv"}, context())
    for value in values.values():
        assert isinstance(value, Unavailable)
        assert str(FIXTURES / "no-such-ledger.csv") in value.reason


def test_a_missing_targets_file_costs_only_the_target_metrics():
    figures = gather_ledger({"path": "ledger.csv", "targets": "no-targets.csv"}, context())
    assert isinstance(figures["finance.revenue_targets"], Unavailable)
    assert str(FIXTURES / "no-targets.csv") in figures["finance.revenue_targets"].reason
    assert figures["finance.burn_rate"] == Decimal("216.67")


def test_bom_currency_codes_symbols_and_thousands_separators_are_read():
    figures = gather_ledger({"path": "ledger_bom.csv", "max_data_age_days": 60},
                            context(period=(dt.date(2026, 9, 1), dt.date(2026, 9, 30))))
    assert figures["finance.cash_on_hand"] == Decimal("2000.50") - Decimal("1000.25")


def _write_xlsx_from_csv(source: Path, target: Path) -> None:
    """The same rows as a person would keep them in a spreadsheet: real dates and numbers where possible."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Books"
    with source.open(encoding="utf-8-sig", newline="") as handle:
        for number, row in enumerate(csv.reader(handle)):
            if number > 0:
                row[0] = dt.date.fromisoformat(row[0])
                try:
                    row[3] = float(row[3])
                except ValueError:
                    pass  # "$1,200.00" and "(1000.00)" stay text cells, as pasted from a bank export
                row[2] = row[2] or None
            sheet.append(row)
    workbook.save(target)


def _same_file_name(value):
    if isinstance(value, str):
        return value.replace("ledger.xlsx", "ledger.csv")
    if isinstance(value, list):
        return [_same_file_name(item) for item in value]
    if isinstance(value, dict):
        return {key: _same_file_name(item) for key, item in value.items()}
    return value


def test_xlsx_and_csv_of_the_same_rows_give_identical_metrics(tmp_path):
    for name in ("ledger.csv", "accounts.csv", "targets.csv"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    _write_xlsx_from_csv(FIXTURES / "ledger.csv", tmp_path / "ledger.xlsx")
    common = {"opening_balance": 5000, "accounts": "accounts.csv", "targets": "targets.csv",
              "rules": [{"rule": "min_reserve_months", "months": 3}],
              "unit_economics": {"revenue_account": "4000 Sales", "variable_categories": ["Fuel"]}}
    from_csv = gather_ledger({"path": "ledger.csv", **common}, context(tmp_path))
    from_xlsx = gather_ledger({"path": "ledger.xlsx", "sheet": "Books", **common}, context(tmp_path))
    assert from_xlsx.keys() == from_csv.keys()
    for name, value in from_csv.items():
        # Spreadsheet row numbers equal CSV line numbers, so only the file name in 'where' differs.
        assert _same_file_name(from_xlsx[name]) == value, name
    assert from_xlsx["finance.burn_rate"] == Decimal("216.67")


def test_xlsx_bad_cell_names_the_spreadsheet_row_and_a_missing_sheet_is_named(tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Date", "Account", "Category", "Amount", "Memo"])
    sheet.append([dt.date(2026, 9, 1), "4000 Sales", "Sales", 100, "fine"])
    sheet.append([dt.date(2026, 9, 2), "4000 Sales", "Sales", "n/a", "text in a number column"])
    workbook.save(tmp_path / "books.xlsx")
    with pytest.raises(SourceError, match=r"books.xlsx:3: column 'amount': not a number \(value 'n/a'\)"):
        gather_ledger({"path": "books.xlsx"}, context(tmp_path))
    with pytest.raises(SourceError, match="no sheet named 'Ledger'"):
        gather_ledger({"path": "books.xlsx", "sheet": "Ledger"}, context(tmp_path))


def test_a_missing_chart_fails_under_fail_and_costs_only_the_account_metrics_under_skip():
    with pytest.raises(SourceError, match="file not found: .*no-chart.csv"):
        gather_ledger({"path": "ledger.csv", "accounts": "no-chart.csv"}, context())
    figures = gather_ledger({"path": "ledger.csv", "accounts": "no-chart.csv", "on_bad_row": "skip"}, context())
    assert isinstance(figures["finance.unknown_accounts"], Unavailable)
    assert str(FIXTURES / "no-chart.csv") in figures["finance.unknown_accounts"].reason
    assert figures["finance.burn_rate"] == Decimal("216.67")


def test_a_ledger_that_stops_weeks_before_the_period_end_gives_no_figures_only_how_far_it_reaches(tmp_path):
    rows = (FIXTURES / "ledger.csv").read_text().splitlines()
    last = max(dt.date.fromisoformat(line.split(",")[0]) for line in rows[1:] if line)
    (tmp_path / "ledger.csv").write_text("\n".join(rows) + "\n")
    period_end = last + dt.timedelta(days=15)

    stale = gather_ledger({"path": "ledger.csv"}, context(tmp_path, (period_end - dt.timedelta(days=6), period_end)))
    fresh = gather_ledger({"path": "ledger.csv", "max_data_age_days": 15},
                          context(tmp_path, (period_end - dt.timedelta(days=6), period_end)))

    assert stale["finance.data_through"] == last == fresh["finance.data_through"]
    cash = stale["finance.cash_on_hand"]
    assert not is_available(cash)
    assert cash.reason.startswith(f"data only through {last.isoformat()}: the ledger's last entry is 15 days")
    assert "max_data_age_days" in cash.reason
    assert cash.plain == f"books only through {last:%b} {last.day}, {last.year}"
    assert all(not is_available(stale[name]) for name in ("finance.burn_rate", "finance.runway_months",
                                                           "finance.revenue_last_month", "finance.rules"))
    assert is_available(fresh["finance.cash_on_hand"])


def test_cash_movements_are_the_periods_entries_by_category_and_add_up_to_the_change_in_cash():
    from flows.core.period import parse_period
    from tests.conftest import SAMPLE_CONFIG

    week = parse_period("2026-W47")  # Nov 16-22, 2026
    data = SAMPLE_CONFIG.parent / "data" / "jada"
    settings = {"path": "ledger.csv", "opening_balance": "48000"}

    def gathered(period):
        return gather_ledger(settings, SourceContext("jada", "JADA", period.start, period.end, data))

    now, before = gathered(week), gathered(week.previous())
    with open(data / "ledger.csv", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if "2026-11-16" <= r["date"] <= "2026-11-22"]
    # By hand: the week's two rows in ledger.csv, the loan payment on the 16th and the slip on the 19th.
    assert [(r["category"], r["amount"]) for r in rows] == [("Boat loan", "-1750.00"), ("Marina slip", "-1450.00")]
    assert now["finance.cash_movements"] == [{"category": "Boat loan", "amount": Decimal("-1750.00")},
                                             {"category": "Marina slip", "amount": Decimal("-1450.00")}]
    assert sum(r["amount"] for r in now["finance.cash_movements"]) == \
        now["finance.cash_on_hand"] - before["finance.cash_on_hand"] == Decimal("-3200.00")
