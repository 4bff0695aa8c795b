"""CFO and Accounting Officer figures of issue 19, recomputed by hand from the sample files."""

from __future__ import annotations

import csv
import json
from decimal import Decimal

import pytest

from flows.core.config import load_config
from flows.core.period import parse_period
from flows.orchestrator.run import run_plain
from flows.templating.formatters import money, number
from tests.conftest import EXAMPLES, SAMPLE_CONFIG, SAMPLE_PERIOD

WINDOW = ("2026-08", "2026-09", "2026-10")
VARIABLE = {"quickdumpnow": ("Dump fees", "Fuel")}  # unit_economics.variable_categories in portfolio.yaml


@pytest.fixture(scope="module")
def rendered():
    summary, emails = run_plain(load_config(SAMPLE_CONFIG), parse_period(SAMPLE_PERIOD), dry_run=True)
    assert summary["failed"] == []
    return {key: email.markdown for key, email in emails.items()}


def ledger(tenant: str) -> list[dict[str, str]]:
    with open(EXAMPLES / "data" / tenant / "ledger.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def snapshot(tenant: str) -> dict:
    return json.loads((EXAMPLES / "data" / tenant / "aws-snapshot.json").read_text())["metrics"]


def section(markdown: str, heading: str) -> str:
    start = markdown.index(heading + "\n") + len(heading) + 1
    end = markdown.find("\n## ", start)
    return markdown[start:end if end >= 0 else None]


def test_jada_margins_from_the_ledger_rows(rendered):
    # Gross: revenue less fuel, captain wages and cleaning (JADA's variable categories); net: less every expense.
    rows = [r for r in ledger("jada") if r["date"][:7] in WINDOW]
    revenue = sum(Decimal(r["amount"]) for r in rows if Decimal(r["amount"]) > 0)
    cost = -sum(Decimal(r["amount"]) for r in rows if r["category"] in ("Fuel", "Captain wages", "Cleaning"))
    expenses = -sum(Decimal(r["amount"]) for r in rows if Decimal(r["amount"]) < 0)
    gross, net = (revenue - cost) / revenue * 100, (revenue - expenses) / revenue * 100
    margins = section(rendered["portfolio-cfo"], "## Break-even and margins")
    assert f"| JADA | {number(gross, 1)}% | {number(net, 1)}% |" in margins
    assert (number(gross, 1), number(net, 1)) == ("65.4", "-30.6")


def test_quickdumpnow_owner_draws_are_out_of_expenses_and_shown_as_draws(rendered):
    rows = [r for r in ledger("quickdumpnow") if r["date"].startswith("2026-10")]
    draws = -sum(Decimal(r["amount"]) for r in rows if r["account"] == "3100 Owner Draws")
    expenses = -sum(Decimal(r["amount"]) for r in rows if Decimal(r["amount"]) < 0
                    and r["account"] not in ("3100 Owner Draws", "6260 Truck Repairs"))
    assert draws == 400
    cfo = rendered["portfolio-cfo"]
    assert f"{money(draws)} last month (QuickDumpNow)" in cfo
    assert f"| QuickDumpNow \\* | $3,180 | {money(expenses)} |" in cfo  # was $4,900 with the draw as an expense
    all_draws = -sum(Decimal(r["amount"]) for r in ledger("quickdumpnow") if r["account"] == "3100 Owner Draws"
                     and r["date"] <= "2026-11-22")
    assert f"| QuickDumpNow | {money(draws)} | {money(all_draws)} |" in rendered["portfolio-accounting"]


def test_the_bank_account_balance_is_derived_and_equals_jadas_cash(rendered):
    fixes = section(rendered["portfolio-accounting"], "## How these figures read the books")
    rows = [r for r in ledger("jada") if r["date"] <= "2026-11-22"]
    posted = [r for r in rows if r["account"] == "1000 Operating Account"]
    balance = Decimal(48000) + sum(Decimal(r["amount"]) for r in rows)
    assert posted == [] and money(balance) == "$12,617"
    assert f"which is the cash on hand ({money(balance)} for JADA)" in fixes
    assert f"| JADA | $48,000 | {len(rows)} | {money(balance)} |" in fixes  # opening, rows since, derived


def test_aws_costs_the_reports_depend_on_against_october_revenue(rendered):
    costs = section(rendered["portfolio-cfo"], "## AWS and domain costs against revenue")
    services = {r["service"]: Decimal(str(r["amount"])) for r in snapshot("jada")["aws.monthly_cost_by_service"]
                if r["month"] == "2026-10"}
    ses, lam, transfer = (services["Amazon Simple Email Service"], services["AWS Lambda"],
                          services["AWS Data Transfer"])
    domains = (Decimal("14") + Decimal("14")) / 12  # two .example names at $14.00 a year
    total = ses + lam + transfer + domains.quantize(Decimal("0.01"))
    revenue = sum(Decimal(r["amount"]) for r in ledger("jada") if r["date"].startswith("2026-10")
                  and Decimal(r["amount"]) > 0)
    bill = Decimal(str(snapshot("jada")["aws.last_month_cost"]))
    # The CFO sees the whole AWS bill (the CTO brief's figure) and the part these reports run on, ranked by
    # that part's share of revenue; the highest share is named (JADA's is 0.1%, DangerousCentaur's 0.2%).
    assert f"| JADA | {money(bill, cents=True)} | {money(total, cents=True)} |" in costs
    assert total == Decimal("5.30") and revenue == Decimal("3850") and number(total / revenue * 100, 1) == "0.1"
    assert "Highest share of last month's revenue first, at most 0.2% (DangerousCentaur)" in costs
    rows = [line.split(" | ")[0].lstrip("| ") for line in costs.splitlines() if line.startswith("| ")][1:]
    assert rows[:2] == ["DangerousCentaur", "JADA"]


def test_domain_renewals_within_90_days_and_the_yearly_domain_cost(rendered):
    costs = section(rendered["portfolio-cfo"], "## AWS and domain costs against revenue")
    registered = [d for t in ("jada", "queenofsandiego", "quickdumpnow", "dangerouscentaur")
                  for d in snapshot(t)["aws.domain_registrations"]]
    assert f"Domain names cost **{money(sum(d['renewal_price'] for d in registered))} a year**" in costs  # 6 x $14
    # Nov 22 + 90 days = Feb 20, 2027: quickdumpnow.example (Dec 9), jada.example (Jan 14), dcstudio (Feb 3).
    assert "- quickdumpnow.example (QuickDumpNow): in 17 days, Dec 9, 2026; renew by hand; $14.00/yr" in costs
    assert "- jada.example (JADA): in 53 days, Jan 14, 2027; renew by hand; $14.00/yr" in costs
    assert "- dcstudio.example (DangerousCentaur): in 73 days, Feb 3, 2027; renews by itself; $14.00/yr" in costs
    assert "queenofsandiego.example" not in costs  # May 30: outside the window
    # The check that asks for it (past the first five decisions) is worded from the same row.
    summary, _ = run_plain(load_config(SAMPLE_CONFIG), parse_period(SAMPLE_PERIOD), roles=["cfo"], dry_run=True,
                           draw_charts=False)
    assert "QuickDumpNow: quickdumpnow.example expires on Dec 9, 2026 and does not renew by itself." in \
        [check["message"] for check in summary["checks"]]


def test_dangerouscentaurs_gross_margin_rule_fails_on_contractor_costs(rendered):
    import openpyxl

    sheet = openpyxl.load_workbook(EXAMPLES / "data" / "dangerouscentaur" / "ledger.xlsx", read_only=True)["Ledger"]
    rows = [r for r in sheet.iter_rows(min_row=2, values_only=True) if r[0].strftime("%Y-%m") in WINDOW]
    revenue = sum(Decimal(str(r[3])) for r in rows if r[3] > 0)
    contractors = -sum(Decimal(str(r[3])) for r in rows if r[2] == "Contractors")
    margin = (revenue - contractors) / revenue * 100
    assert f"gross margin {number(margin, 1)}% over the last 3 months; at least 30% required" in \
        rendered["portfolio-cfo"]


def test_quickdumpnows_runway_counts_its_owner_draws(rendered):
    # Rows through Nov 22 on the chart (the 6260 Truck Repairs row is skipped as unknown): cash = 36000 + rows.
    chart = {r["account"] for r in csv.DictReader(open(EXAMPLES / "data" / "quickdumpnow" / "accounts.csv"))}
    rows = [r for r in ledger("quickdumpnow") if r["account"] in chart and r["date"] <= "2026-11-22"]
    cash = Decimal(36000) + sum(Decimal(r["amount"]) for r in rows)
    window = [r for r in rows if r["date"][:7] in WINDOW]
    draws = -sum(Decimal(r["amount"]) for r in window if r["account"] == "3100 Owner Draws")
    net = sum(Decimal(r["amount"]) for r in window if r["account"] != "3100 Owner Draws")
    burn = -net / 3
    assert (cash, draws, burn.quantize(Decimal("0.01"))) == (Decimal("13021.39"), Decimal("1200"), Decimal("945.66"))
    # 13021.39 / (945.66 + 400) = 9.7 months (cash / burn alone said 13.8).
    assert number(cash / (burn + draws / 3), 1) == "9.7" and number(cash / burn, 1) == "13.8"
    cfo = rendered["portfolio-cfo"]
    assert f"| {money(cash)} | 9.7 months |" in cfo
    assert "Runway counts owner draws, which lower cash" in cfo


def test_the_roadmap_names_the_year_of_its_milestones(rendered):
    accounting = rendered["portfolio-accounting"]
    # Period ends Nov 22, 2026: the fourth milestone is March 2027.
    # The last milestone of the 3 entities with the largest cuts, named with its year (the 4th in its GM brief).
    assert accounting.count("| March 2027 |") == 3
    assert "## Road to profit by March 2027" in rendered["dangerouscentaur-gm"]


def test_margins_sit_under_their_month_and_draws_last_month_is_the_last_full_months(portfolio_copy):
    # QuickDumpNow keeps only its September owner draw (no revenue or expense in September) and loses its
    # October draw; every entity's renewal window is 30 days.
    data = portfolio_copy.parent / "data" / "quickdumpnow" / "ledger.csv"
    lines = data.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not (line.startswith("2026-09") and "Owner Draws" not in line)
            and not (line.startswith("2026-10") and "Owner Draws" in line)]
    data.write_text("".join(kept), encoding="utf-8")
    config = portfolio_copy.read_text(encoding="utf-8").replace("cost_share: {}", "cost_share: {renewal_window_days: 30}")
    portfolio_copy.write_text(config, encoding="utf-8")
    summary, emails = run_plain(load_config(portfolio_copy), parse_period(SAMPLE_PERIOD), dry_run=True)
    assert summary["failed"] == []
    cfo, accounting = emails["portfolio-cfo"].markdown, emails["portfolio-accounting"].markdown

    rows = [r for r in ledger("quickdumpnow") if r["account"] != "6260 Truck Repairs"]

    def margins_of(month: str) -> tuple[str, str]:
        # Gross: revenue less disposal fees and fuel (QuickDumpNow's variable categories); net: less every expense.
        month_rows = [r for r in rows if r["date"].startswith(month) and r["account"] != "3100 Owner Draws"]
        revenue = sum(Decimal(r["amount"]) for r in month_rows if Decimal(r["amount"]) > 0)
        cost = -sum(Decimal(r["amount"]) for r in month_rows if r["category"] in VARIABLE["quickdumpnow"])
        net = sum(Decimal(r["amount"]) for r in month_rows)
        return number((revenue - cost) / revenue * 100, 1), number(net / revenue * 100, 1)

    # Each month's margins sit under their own month (September has no revenue: no margin).
    from flows.plan.plan import source_context
    from sources.catalogue import REGISTRY

    config = load_config(portfolio_copy)
    tenant = config.tenant("quickdumpnow")
    values = REGISTRY.gather("ledger", ["finance.margins"], tenant.sources["ledger"],
                             source_context(config, tenant, parse_period(SAMPLE_PERIOD)))
    by_month = {row["month"]: row for row in values["finance.margins"]}
    for month in ("2026-08", "2026-10"):
        shown = (number(by_month[month]["gross_margin_percent"], 1), number(by_month[month]["net_margin_percent"], 1))
        assert shown == margins_of(month)
    assert by_month.get("2026-09", {}).get("net_margin_percent") is None
    # October's draw is gone: last month's draws are 0, not September's 400.
    fixes = section(accounting, "## How these figures read the books")
    assert "| QuickDumpNow | $0 |" in fixes
    costs = section(cfo, "## AWS and domain costs against revenue")
    assert "- quickdumpnow.example (QuickDumpNow): in 17 days, Dec 9, 2026;" in costs  # Dec 9: 17 days, within 30
    assert "jada.example" not in costs  # Jan 14: 53 days, outside 30


def test_unpriced_domains_are_said_to_be_left_out_and_expired_ones_come_first(portfolio_copy):
    data = portfolio_copy.parent / "data"

    def edit(tenant: str, domain: str, **changes) -> None:
        path = data / tenant / "aws-snapshot.json"
        snap = json.loads(path.read_text())
        for row in snap["metrics"]["aws.domain_registrations"]:
            if row["domain"] == domain:
                row.update(changes)
        path.write_text(json.dumps(snap))

    edit("queenofsandiego", "queenofsandiego.example", renewal_price=None)  # no listed price
    edit("dangerouscentaur", "dcstudio.example", expires="2026-11-15")  # 7 days before the period end, Nov 22
    summary, emails = run_plain(load_config(portfolio_copy), parse_period(SAMPLE_PERIOD), dry_run=True)
    assert summary["failed"] == []
    costs = section(emails["portfolio-cfo"].markdown, "## AWS and domain costs against revenue")
    # Six domains at $14, one unpriced: 5 x 14 = $70 a year.
    assert "Domain names cost **$70 a year**." in costs
    listed = [line for line in costs.splitlines() if line.startswith("- ") and "example" in line]
    assert listed[0] == "- dcstudio.example (DangerousCentaur): expired 7 days ago, Nov 15, 2026; renews by itself; $14.00/yr"
    assert listed[1].startswith("- quickdumpnow.example (QuickDumpNow): in 17 days, Dec 9, 2026;")


def test_an_unreadable_ledger_row_is_named_as_written_and_counted_once():
    import csv

    from tests.conftest import EXAMPLES

    summary, emails = run_plain(load_config(SAMPLE_CONFIG), parse_period(SAMPLE_PERIOD), roles=["accounting"],
                                dry_run=True, draw_charts=False)
    fired = {c["id"] for c in summary["checks"] if c["tenant"] == "quickdumpnow" and c["status"] == "fired"}
    # ledger.csv line 382 is left out only because its account is not on the chart: one issue, not two.
    assert "unknown-accounts" in fired and "ledger-problems" not in fired
    with open(EXAMPLES / "data" / "quickdumpnow" / "ledger.csv", encoding="utf-8") as handle:
        row = list(csv.DictReader(handle))[382 - 2]  # line 382, the header is line 1
    markdown = emails["portfolio-accounting"].markdown
    assert f"| {row['date']} | {row['account']} | {row['amount']} | {row['memo']} | account not in the chart of accounts |" \
        in markdown
    assert "run summary" not in markdown
