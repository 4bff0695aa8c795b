"""Owner draws, margins, the derived bank balance and the profitability roadmap, each against sums worked
by hand from the small ledgers written in each test."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sources.ledger import gather_ledger
from sources.ledger.roadmap import milestone_months, months_ahead
from sources.registry import SourceContext, Unavailable

CHART = """account,name,type
1000 Bank,Operating bank account,asset
3100 Owner Draws,Owner draws,equity
4000 Sales,Sales,income
6100 Rent,Rent,expense
6200 Fuel,Fuel,expense
"""
# Aug: +1000 sales, -400 rent, -200 fuel, -300 draw; Sep: +1200, -400, -300, -300 draw;
# Oct: +900, -400, -150, -300 draw. Nov 10: +500 sales (inside the period, month not closed).
LEDGER = """date,account,category,amount,memo
2026-08-03,4000 Sales,Sales,1000.00,a
2026-08-05,6100 Rent,Rent,-400.00,b
2026-08-09,6200 Fuel,Fuel,-200.00,c
2026-08-20,3100 Owner Draws,Owner draw,-300.00,d
2026-09-03,4000 Sales,Sales,1200.00,e
2026-09-05,6100 Rent,Rent,-400.00,f
2026-09-09,6200 Fuel,Fuel,-300.00,g
2026-09-20,3100 Owner Draws,Owner draw,-300.00,h
2026-10-03,4000 Sales,Sales,900.00,i
2026-10-05,6100 Rent,Rent,-400.00,j
2026-10-09,6200 Fuel,Fuel,-150.00,k
2026-10-20,3100 Owner Draws,Owner draw,-300.00,l
2026-11-10,4000 Sales,Sales,500.00,m
"""
TARGETS = """month,target
2026-11,1000
2026-12,900
2027-01,600
2027-02,700
2027-03,650
"""
PERIOD = (dt.date(2026, 11, 16), dt.date(2026, 11, 22))


def books(tmp_path, **settings):
    (tmp_path / "accounts.csv").write_text(CHART, encoding="utf-8")
    (tmp_path / "ledger.csv").write_text(LEDGER, encoding="utf-8")
    (tmp_path / "targets.csv").write_text(TARGETS, encoding="utf-8")
    context = SourceContext("acme", "Acme", PERIOD[0], PERIOD[1], tmp_path)
    return gather_ledger({"path": "ledger.csv", "accounts": "accounts.csv", "targets": "targets.csv",
                          "opening_balance": 2000, **settings}, context)


def test_owner_draws_on_an_equity_account_are_draws_not_expenses(tmp_path):
    figures = books(tmp_path)
    october = next(row for row in figures["finance.monthly"] if row["month"] == "2026-10")
    # Oct expenses: rent 400 + fuel 150 = 550 (the 300 draw is not an expense); net 900 - 550 = 350.
    assert october == {"month": "2026-10", "revenue": Decimal("900"), "expenses": Decimal("550"),
                       "net": Decimal("350"), "draws": Decimal("300")}
    assert figures["finance.expenses_last_month"] == Decimal("550")
    assert figures["finance.owner_draws_last_month"] == Decimal("300")
    # Burn Aug-Oct: expenses (600 + 700 + 550) - revenue (1000 + 1200 + 900) = -1250, / 3 = -416.67:
    # the business makes money; counting draws as expenses would have made it (1850 + 900 - 3100) / 3 = -116.67.
    assert figures["finance.burn_rate"] == Decimal("-416.67")
    # Cash still counts the draws: 2000 + 3600 sales - 1850 costs - 900 draws = 2850.
    assert figures["finance.cash_on_hand"] == Decimal("2850")
    assert "Owner draw" not in {row["category"] for row in figures["finance.expenses_by_category"]}


def test_the_owner_draw_rule_counts_equity_draws_against_revenue(tmp_path):
    figures = books(tmp_path, rules=[{"rule": "max_owner_draw_percent", "percent": 25}])
    rule = figures["finance.rules"][0]
    # 900 of draws against 3100 of revenue over Aug-Oct = 29.0%, above 25%.
    assert rule["actual"] == Decimal("29.0") and rule["status"] == "fail"


def test_gross_and_net_margin_per_month_and_over_three_months(tmp_path):
    figures = books(tmp_path, cost_of_revenue_categories=["Fuel"])
    rows = {row["month"]: row for row in figures["finance.margins"]}
    # Sep: revenue 1200, fuel 300 -> gross 900 = 75.0%; expenses 700 -> net 500 = 41.7%.
    assert rows["2026-09"]["cost_of_revenue"] == Decimal("300") and rows["2026-09"]["gross_profit"] == Decimal("900")
    assert rows["2026-09"]["gross_margin_percent"] == 75.0 and rows["2026-09"]["net_margin_percent"] == 41.7
    # Aug-Oct: revenue 3100, fuel 650 -> (3100 - 650) / 3100 = 79.0%; expenses 1850 -> 1250 / 3100 = 40.3%.
    assert figures["finance.gross_margin_percent"] == 79.0
    assert figures["finance.net_margin_percent"] == 40.3


def test_cost_of_revenue_defaults_to_the_unit_economics_variable_categories(tmp_path):
    figures = books(tmp_path, unit_economics={"revenue_account": "4000 Sales", "variable_categories": ["Fuel", "Rent"]})
    # Aug-Oct: (3100 - 650 fuel - 1200 rent) / 3100 = 40.3%: with every expense as cost, gross equals net.
    assert figures["finance.gross_margin_percent"] == 40.3 == figures["finance.net_margin_percent"]


def test_without_cost_of_revenue_gross_margin_is_unavailable_and_net_margin_is_not(tmp_path):
    figures = books(tmp_path)
    assert isinstance(figures["finance.gross_margin_percent"], Unavailable)
    assert "cost_of_revenue_categories" in figures["finance.gross_margin_percent"].reason
    assert figures["finance.net_margin_percent"] == 40.3


def test_the_gross_margin_rule_holds_or_fails_against_its_floor(tmp_path):
    figures = books(tmp_path, cost_of_revenue_categories=["Fuel"],
                    rules=[{"rule": "min_gross_margin_percent", "percent": 80},
                           {"rule": "min_gross_margin_percent", "percent": 75}])
    assert [r["status"] for r in figures["finance.rules"]] == ["fail", "pass"]  # 79.0% against 80 and 75
    assert figures["finance.rules_failed"] == 1


def test_the_bank_balance_of_single_entry_books_is_derived_from_every_entry(tmp_path):
    figures = books(tmp_path)
    bank = figures["finance.operating_account"]
    # Nothing is posted to 1000 Bank; its balance is opening 2000 + all 13 rows = 2850 = cash on hand.
    assert bank["account"] == "1000 Bank" and bank["posted"] == Decimal("0") and bank["posted_entries"] == 0
    assert bank["balance"] == Decimal("2850") == figures["finance.cash_on_hand"]
    assert bank["implied_entries"] == 13
    totals = {row["account"]: row["amount"] for row in figures["finance.account_totals"]}
    # October through the bank: 900 - 400 - 150 - 300 = 50, no longer the 0 of an account nobody posts to.
    assert totals["1000 Bank"] == Decimal("50")
    assert totals["3100 Owner Draws"] == Decimal("-300")


def test_two_asset_accounts_need_the_operating_account_named(tmp_path):
    (tmp_path / "accounts.csv").write_text(CHART + "1100 Savings,Savings,asset\n", encoding="utf-8")
    (tmp_path / "ledger.csv").write_text(LEDGER, encoding="utf-8")
    context = SourceContext("acme", "Acme", PERIOD[0], PERIOD[1], tmp_path)
    figures = gather_ledger({"path": "ledger.csv", "accounts": "accounts.csv"}, context)
    assert "sources.ledger.operating_account" in figures["finance.operating_account"].reason
    named = gather_ledger({"path": "ledger.csv", "accounts": "accounts.csv", "operating_account": "1000 Bank"},
                          context)
    assert named["finance.operating_account"]["balance"] == Decimal("850")  # opening 0 + 850 of rows


def test_milestones_split_the_months_ahead_into_four_spans_ending_in_march():
    assert months_ahead(dt.date(2026, 11, 22)) == ["2026-11", "2026-12", "2027-01", "2027-02", "2027-03"]
    assert milestone_months(months_ahead(dt.date(2026, 11, 22))) == ["2026-12", "2027-01", "2027-02", "2027-03"]
    # From February: Mar 2026 .. Mar 2027 is 13 months -> ends of spans 4, 7, 10, 13.
    assert milestone_months(months_ahead(dt.date(2026, 2, 28))) == ["2026-06", "2026-09", "2026-12", "2027-03"]


def test_a_burning_business_glides_to_break_even_at_the_fourth_milestone(tmp_path):
    # October rent of 4000 instead of 400 makes the business burn cash.
    ledger = LEDGER.replace("2026-10-05,6100 Rent,Rent,-400.00", "2026-10-05,6100 Rent,Rent,-4000.00")
    (tmp_path / "accounts.csv").write_text(CHART, encoding="utf-8")
    (tmp_path / "ledger.csv").write_text(ledger, encoding="utf-8")
    (tmp_path / "targets.csv").write_text(TARGETS, encoding="utf-8")
    context = SourceContext("acme", "Acme", PERIOD[0], PERIOD[1], tmp_path)
    figures = gather_ledger({"path": "ledger.csv", "accounts": "accounts.csv", "targets": "targets.csv"}, context)
    # Burn: expenses 600 + 700 + 4150 = 5450 - revenue 3100 = 2350 / 3 = 783.33 a month.
    assert figures["finance.burn_rate"] == Decimal("783.33")
    road = figures["finance.profitability_roadmap"]
    assert [r["date"] for r in road] == [dt.date(2026, 12, 31), dt.date(2027, 1, 31), dt.date(2027, 2, 28),
                                         dt.date(2027, 3, 31)]
    # Ceilings 783.33 x 3/4, 2/4, 1/4, 0 = 587.50, 391.67, 195.83, 0; targets 900, 600, 700, 650.
    assert [r["burn_ceiling"] for r in road] == [Decimal("587.50"), Decimal("391.67"), Decimal("195.83"),
                                                 Decimal("0.00")]
    assert [r["expense_ceiling"] for r in road] == [Decimal("1487.50"), Decimal("991.67"), Decimal("895.83"),
                                                    Decimal("650.00")]
    assert {r["status"] for r in road} == {"upcoming"}
    # Average expenses Aug-Oct 5450 / 3 = 1816.67: no target from Nov to Mar reaches it.
    assert figures["finance.break_even_month"] is None


def test_a_profitable_business_keeps_burn_at_zero_and_breaks_even_from_the_first_covering_target(tmp_path):
    figures = books(tmp_path)
    road = figures["finance.profitability_roadmap"]
    assert [r["burn_ceiling"] for r in road] == [Decimal("0.00")] * 4
    # Average expenses Aug-Oct (600 + 700 + 550) / 3 = 616.67: November's 1000 target is the first to cover it.
    assert figures["finance.break_even_month"] == "2026-11"


def test_a_period_closing_december_reaches_to_the_march_after_for_four_milestones():
    # Dec 31, 2026 leaves Jan-Mar 2027 only; the horizon becomes Jan 2027 .. Mar 2028 (15 months):
    # span ends ceil(15/4)=4, ceil(30/4)=8, ceil(45/4)=12, 15.
    ahead = months_ahead(dt.date(2026, 12, 31))
    assert ahead[0] == "2027-01" and ahead[-1] == "2028-03" and len(ahead) == 15
    assert milestone_months(ahead) == ["2027-04", "2027-08", "2027-12", "2028-03"]


def test_the_month_under_way_is_in_progress_with_its_revenue_so_far(tmp_path):
    (tmp_path / "accounts.csv").write_text(CHART, encoding="utf-8")
    (tmp_path / "ledger.csv").write_text(LEDGER + "2026-12-08,4000 Sales,Sales,950.00,n\n", encoding="utf-8")
    (tmp_path / "targets.csv").write_text(TARGETS, encoding="utf-8")
    context = SourceContext("acme", "Acme", dt.date(2026, 12, 7), dt.date(2026, 12, 13), tmp_path)
    figures = gather_ledger({"path": "ledger.csv", "accounts": "accounts.csv", "targets": "targets.csv"}, context)
    road = figures["finance.profitability_roadmap"]
    # Period ends Dec 13: ahead Dec .. Mar (4 months), one milestone each; December has 950 so far.
    assert [r["month"] for r in road] == ["2026-12", "2027-01", "2027-02", "2027-03"]
    assert [r["status"] for r in road] == ["in progress", "upcoming", "upcoming", "upcoming"]
    assert road[0]["revenue_so_far"] == Decimal("950") and road[1]["revenue_so_far"] is None


def test_milestones_past_the_report_window_take_their_targets_from_the_file(tmp_path):
    (tmp_path / "accounts.csv").write_text(CHART, encoding="utf-8")
    (tmp_path / "ledger.csv").write_text(LEDGER + "2026-12-20,4000 Sales,Sales,700.00,n\n", encoding="utf-8")
    # finance.revenue_targets stops at March 2027; the roadmap from Dec 31 runs to March 2028.
    (tmp_path / "targets.csv").write_text(TARGETS + "2027-04,800\n2027-08,900\n2027-12,1000\n2028-03,1100\n",
                                          encoding="utf-8")
    context = SourceContext("acme", "Acme", dt.date(2026, 12, 25), dt.date(2026, 12, 31), tmp_path)
    figures = gather_ledger({"path": "ledger.csv", "accounts": "accounts.csv", "targets": "targets.csv"}, context)
    road = figures["finance.profitability_roadmap"]
    assert [(r["month"], r["revenue_target"]) for r in road] == [
        ("2027-04", Decimal("800")), ("2027-08", Decimal("900")), ("2027-12", Decimal("1000")),
        ("2028-03", Decimal("1100"))]
    assert figures["finance.revenue_targets"][-1]["month"] == "2027-03"


def write_books(tmp_path, ledger: str, **settings):
    (tmp_path / "accounts.csv").write_text(CHART, encoding="utf-8")
    (tmp_path / "ledger.csv").write_text(ledger, encoding="utf-8")
    context = SourceContext("acme", "Acme", PERIOD[0], PERIOD[1], tmp_path)
    return gather_ledger({"path": "ledger.csv", "accounts": "accounts.csv", **settings}, context)


def test_runway_counts_owner_draws_because_they_lower_cash(tmp_path):
    # Each of Aug-Oct: sales 8000, rent 10000, draw 3000; Nov 12 sales 1000 keeps the books fresh.
    months = [("2026-08", "a"), ("2026-09", "b"), ("2026-10", "c")]
    ledger = "date,account,category,amount,memo\n" + "".join(
        f"{m}-05,4000 Sales,Sales,8000.00,{x}1\n{m}-06,6100 Rent,Rent,-10000.00,{x}2\n"
        f"{m}-20,3100 Owner Draws,Owner draw,-3000.00,{x}3\n" for m, x in months) + \
        "2026-11-12,4000 Sales,Sales,1000.00,d\n"
    figures = write_books(tmp_path, ledger, opening_balance=44000)
    # Cash 44000 - 3 x (10000 + 3000 - 8000) + 1000 = 30000; burn (30000 - 24000) / 3 = 2000 (draws left out).
    assert figures["finance.cash_on_hand"] == Decimal("30000")
    assert figures["finance.burn_rate"] == Decimal("2000.00")
    # Cash falls by burn 2000 + draws 3000 = 5000 a month: 30000 / 5000 = 6 months (cash / burn alone said 15).
    assert figures["finance.runway_months"] == 6.0


def test_draws_that_outweigh_a_profit_still_give_a_finite_runway(tmp_path):
    # books(): burn -416.67 (profitable) but draws 300 a month: cash 2850 falls by 300 - 416.67 < 0 -> infinite.
    assert books(tmp_path)["finance.runway_months"] == float("inf")
    # With draws of 600 (double each): cash 2850 - 900 = 1950 falls by 600 - 416.67 = 183.33 a month -> 10.6.
    doubled = LEDGER.replace("Owner draw,-300.00", "Owner draw,-600.00")
    figures = write_books(tmp_path, doubled, opening_balance=2000)
    assert figures["finance.cash_on_hand"] == Decimal("1950")
    assert round(figures["finance.runway_months"], 1) == round(1950 / (600 - 1250 / 3), 1) == 10.6


def test_margins_are_unavailable_when_a_month_of_the_window_has_no_entries(tmp_path):
    no_september = "\n".join(line for line in LEDGER.splitlines() if not line.startswith("2026-09")) + "\n"
    figures = write_books(tmp_path, no_september, cost_of_revenue_categories=["Fuel"])
    for name in ("finance.gross_margin_percent", "finance.net_margin_percent"):
        assert isinstance(figures[name], Unavailable)
        assert "2026-09" in figures[name].reason and figures[name].plain == "books incomplete for September 2026"
    # Only August and October are left; the margin over them alone ((1000+900-1150)/1900 = 39.5%) is not shown.


def test_a_month_with_only_an_owner_draw_counts_as_covered_and_has_no_margin_row(tmp_path):
    only_draw = "\n".join(line for line in LEDGER.splitlines()
                          if not line.startswith("2026-09") or "Owner Draws" in line) + "\n"
    figures = write_books(tmp_path, only_draw)
    assert [row["month"] for row in figures["finance.margins"]] == ["2026-08", "2026-10", "2026-11"]
    # Aug-Oct: revenue 1000 + 0 + 900 = 1900, expenses 600 + 0 + 550 = 1150: net 750 / 1900 = 39.5%.
    assert figures["finance.net_margin_percent"] == 39.5


def test_the_gross_margin_rule_compares_the_unrounded_margin(tmp_path):
    # Aug-Oct revenue 5000 + 3000 + 2000 = 10000, fuel 7004: gross 2996 / 10000 = 29.96%, shown as 30.0%.
    ledger = """date,account,category,amount,memo
2026-08-03,4000 Sales,Sales,5000.00,a
2026-09-03,4000 Sales,Sales,3000.00,b
2026-10-03,4000 Sales,Sales,2000.00,c
2026-10-09,6200 Fuel,Fuel,-7004.00,d
2026-11-10,4000 Sales,Sales,500.00,e
"""
    figures = write_books(tmp_path, ledger, cost_of_revenue_categories=["Fuel"],
                          rules=[{"rule": "min_gross_margin_percent", "percent": 30}])
    assert figures["finance.gross_margin_percent"] == 30.0
    rule = figures["finance.rules"][0]
    assert rule["status"] == "fail" and rule["actual"] == Decimal("29.96")
    assert "_gross_margin_percent_exact" not in figures
