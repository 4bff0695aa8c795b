"""Comparisons by the engine: a metric against the prior period, a year before and its target, gathered
by the run for the metrics a report compares, and shown by the KPI strip and the what-changed line."""

from __future__ import annotations

import textwrap
from decimal import Decimal

from flows.core.config import load_config
from flows.core.period import parse_period
from flows.orchestrator.run import run_plain
from flows.render.comparisons import compare_portfolio, compare_tenant
from sources.catalogue import REGISTRY

PERIOD = parse_period("2026-W47")  # Nov 16-22, 2026


def test_periods_step_back_a_week_a_month_and_a_year():
    assert (PERIOD.previous().label, PERIOD.year_before().label) == ("2026-W46", "2025-W47")
    assert (parse_period("2026-W01").previous().label, parse_period("2026-01").previous().label) == ("2025-W52",
                                                                                                      "2025-12")
    assert parse_period("2026-W53").year_before().label == "2025-W52"  # 2025 has no week 53


def test_a_tenants_comparison_says_the_change_whether_it_is_good_and_the_target():
    cash = REGISTRY.metrics["finance.cash_on_hand"]
    burn = REGISTRY.metrics["finance.burn_rate"]
    revenue = REGISTRY.metrics["finance.revenue_last_month"]
    values = {"finance.cash_on_hand": Decimal("12617"), "finance.cash_on_hand@previous": Decimal("13817"),
              "finance.burn_rate": Decimal("1675"), "finance.burn_rate@previous": Decimal("1400"),
              "finance.revenue_last_month": Decimal("3850"), "finance.revenue_target_last_month": Decimal("5000")}
    cash_now = compare_tenant(cash, values, PERIOD)
    assert (cash_now.value_text, cash_now.change_text, cash_now.good) == ("$12,617", "▼ $1,200 vs last week", False)
    assert cash_now.sentence() == "Cash on hand down $1,200 (-8.7%) vs last week"  # 1200 / 13817 = 8.68%
    burn_now = compare_tenant(burn, values, PERIOD)
    assert (burn_now.change_text, burn_now.good) == ("▲ $275 vs last week", False)  # burning more is bad news
    revenue_now = compare_tenant(revenue, values, PERIOD)
    assert revenue_now.change_text == "" and revenue_now.target_text == "77% of the $5,000 target"  # 3850/5000


def test_the_portfolio_figure_sums_the_tenants_that_have_it_and_names_who_is_left_out():
    from sources.registry import Unavailable

    cash = REGISTRY.metrics["finance.cash_on_hand"]
    tenants = [("JADA", {"finance.cash_on_hand": Decimal("100"), "finance.cash_on_hand@previous": Decimal("80")}),
               ("Acme", {"finance.cash_on_hand": Decimal("50"), "finance.cash_on_hand@previous": Decimal("60")}),
               ("Gone", {"finance.cash_on_hand": Unavailable("finance.cash_on_hand", "no ledger")})]
    total = compare_portfolio(cash, tenants, PERIOD)
    assert (total.value, total.previous, total.left_out) == (150, 140, ("Gone",))
    assert total.kpi("Cash").change == "▲ $10 vs last week" and total.kpi().note == "leaves out Gone"


def kpi_report(metrics: str, body: str) -> str:
    """A portfolio report named kpi that declares ``metrics`` (a YAML list) and whose body is ``body``."""
    return f"---\nrole: kpi\ntitle: KPIs\nsubject: KPIs\nscope: portfolio\nmetrics: {metrics}\n---\n{body}\n"


def write_portfolio(tmp_path, report: str):
    """One tenant whose books are worked by hand: opening 1000; W46 (Nov 9-15) +500; W47 (Nov 16-22) -200."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "ledger.csv").write_text(textwrap.dedent("""\
        date,account,category,amount,memo
        2025-11-10,4000 Sales,Sales,300,a year before
        2026-08-03,4000 Sales,Sales,1000,
        2026-08-04,5000 Rent,Rent,-900,
        2026-09-03,4000 Sales,Sales,1000,
        2026-09-04,5000 Rent,Rent,-900,
        2026-10-03,4000 Sales,Sales,1000,
        2026-10-04,5000 Rent,Rent,-900,
        2026-11-10,4000 Sales,Sales,500,week 46
        2026-11-18,5000 Rent,Rent,-200,week 47
        """))
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "kpi.md").write_text(textwrap.dedent(report))
    config = tmp_path / "portfolio.yaml"
    config.write_text(textwrap.dedent("""\
        portfolio: {name: Test Holdings}
        reports_dir: reports
        delivery: {backend: outbox, outbox_dir: outbox, from_address: reports@holdings.example,
                   default_recipient: owner@holdings.example}
        tenants:
          - id: acme
            name: Acme
            sources:
              ledger: {path: data/ledger.csv, opening_balance: 1000, max_data_age_days: 400}
        """))
    return load_config(config)


def test_a_kpi_strip_shows_each_figure_against_last_week_gathered_by_the_run(tmp_path):
    # Cash at Nov 22: 1000 + 300 + 3 x (1000 - 900) + 500 - 200 = 1900; at Nov 15: 2100; at Nov 22, 2025: 1300.
    config = write_portfolio(tmp_path, kpi_report("[finance.cash_on_hand]", (
        '{{ kpi_strip({"finance.cash_on_hand": "Cash"}) }}\n\n{{ what_changed(["finance.cash_on_hand"]) }} '
        'A year before: {{ compare("finance.cash_on_hand").year_text }}.')))
    summary, rendered = run_plain(config, PERIOD, dry_run=True)
    assert summary["failed"] == [], summary["failed"]
    email = rendered["portfolio-kpi"]
    assert "Cash: $1,900 (▼ $200 vs last week)" in email.text
    assert "Cash on hand down $200 (-9.5%) vs last week. A year before: $1,300 a year before." in " ".join(
        email.text.split())
    assert 'class="kpi-strip"' in email.html and "color:#b91c1c" in email.html  # cash falling is bad news
    assert "component:" not in email.html + email.text + email.markdown  # the artifact's Markdown reads as text


def test_only_the_compared_metrics_are_gathered_again_for_earlier_periods(tmp_path):
    from flows.plan.definitions import load_definitions
    from flows.plan.plan import plan_run

    config = write_portfolio(tmp_path, kpi_report("[finance.cash_on_hand, finance.burn_rate]", (
        '{{ kpi_strip(["finance.cash_on_hand"]) }} {{ money(total(tenants, "finance.burn_rate")) }}')))
    definitions, problems = load_definitions(config.reports_path)
    assert problems == [] and definitions[0].compared == ("finance.cash_on_hand",)
    assert plan_run(config, definitions, PERIOD).lookbacks == {("acme", "ledger"): ["finance.cash_on_hand"]}


def test_a_figure_without_a_portfolio_total_says_how_to_compare_it(tmp_path):
    config = write_portfolio(tmp_path, kpi_report("[finance.net_margin_percent]",
                                                  '{{ kpi_strip(["finance.net_margin_percent"]) }}'))
    summary, _ = run_plain(config, PERIOD, dry_run=True)
    [failure] = summary["failed"]
    assert "finance.net_margin_percent has no portfolio figure" in failure["reason"]
    assert "kpi.md:8" in failure["reason"]


def test_the_portfolio_runway_is_total_cash_over_total_outflow_not_a_sum_of_runways():
    runway = REGISTRY.metrics["finance.runway_months"]
    tenants = [("A", {"finance.cash_on_hand": Decimal("100"), "finance.monthly_outflow": Decimal("10"),
                      "finance.cash_on_hand@previous": Decimal("130"), "finance.monthly_outflow@previous": Decimal("10")}),
               ("B", {"finance.cash_on_hand": Decimal("50"), "finance.monthly_outflow": Decimal("20"),
                      "finance.cash_on_hand@previous": Decimal("50"), "finance.monthly_outflow@previous": Decimal("20")})]
    total = compare_portfolio(runway, tenants, PERIOD)
    # (100 + 50) / (10 + 20) = 5.0 months; a week before (130 + 50) / 30 = 6.0: a month of runway lost.
    assert (total.value, total.previous, total.value_text) == (5.0, 6.0, "5.0 months")
    assert total.change_text == "▼ 1.0 months vs last week" and total.good is False


def test_portfolio_money_totals_add_the_figures_as_shown():
    burn = REGISTRY.metrics["finance.burn_rate"]
    # $1,674.92 and $2,520.02 show as $1,675 and $2,520: the total shows $4,195, not $4,194.94 -> $4,195.
    # With three entities at $0.40 each, the shown rows are $0 + $0 + $0 and so is the total (not $1).
    assert compare_portfolio(burn, [("A", {"finance.burn_rate": Decimal("1674.92")}),
                                    ("B", {"finance.burn_rate": Decimal("2520.02")})], PERIOD).value == 4195
    assert compare_portfolio(burn, [(name, {"finance.burn_rate": Decimal("0.40")}) for name in "ABC"],
                             PERIOD).value == 0


def test_a_tenants_change_names_its_components_that_moved_it_most():
    """Cash is split by the period's entries (they add up to the change); expenses by category against the
    prior period's categories (they add up to the figure)."""
    cash = REGISTRY.metrics["finance.cash_on_hand"]
    values = {"finance.cash_on_hand": Decimal("12617"), "finance.cash_on_hand@previous": Decimal("15817"),
              "finance.cash_movements": [{"category": "Boat loan", "amount": Decimal("-1750.00")},
                                         {"category": "Marina slip", "amount": Decimal("-1450.00")}]}
    assert compare_tenant(cash, values, PERIOD).sentence() == \
        "Cash on hand down $3,200 (-20.2%) vs last week: Boat loan -$1,750, Marina slip -$1,450"  # 3200 / 15817
    # One component that explains it all is still named: it says why.
    values["finance.cash_movements"] = [{"category": "Fuel", "amount": Decimal("-3200.40")}]
    assert compare_tenant(cash, values, PERIOD).sentence().endswith("vs last week: Fuel -$3,200")
    expenses = REGISTRY.metrics["finance.expenses_last_month"]
    values = {"finance.expenses_last_month": Decimal("7600"), "finance.expenses_last_month@previous": Decimal("6800"),
              "finance.expenses_by_category": [{"category": "Fuel", "amount": Decimal("2500")},
                                               {"category": "Wages", "amount": Decimal("5100")}],
              "finance.expenses_by_category@previous": [{"category": "Fuel", "amount": Decimal("2000")},
                                                        {"category": "Wages", "amount": Decimal("4800")}]}
    # Fuel +500 and wages +300 make the 800; the largest first.
    assert compare_tenant(expenses, values, PERIOD).sentence() == \
        "Expenses last month up $800 (+11.8%) vs last week: Fuel +$500, Wages +$300"  # 800 / 6800 = 11.76%
    # A category gone since the prior period counts as all of its amount falling.
    values["finance.expenses_by_category"] = [{"category": "Wages", "amount": Decimal("7600")}]
    assert compare_tenant(expenses, values, PERIOD).contributions == (("Wages", 2800.0), ("Fuel", -2000.0))
    # Without the prior period's rows the line names no components rather than guessing.
    del values["finance.expenses_by_category@previous"]
    assert compare_tenant(expenses, values, PERIOD).sentence() == "Expenses last month up $800 (+11.8%) vs last week"
