"""Review fixes in the CEO and CMO briefs, each shown on a copy of the sample portfolio changed so the old
template would print a wrong or contradictory sentence. Expected figures are worked by hand from the files."""

from __future__ import annotations

import csv
import math
from decimal import Decimal
from pathlib import Path

from flows.core.config import load_config
from flows.core.period import parse_period
from flows.orchestrator.run import run_plain
from flows.templating.formatters import money
from tests.conftest import SAMPLE_PERIOD, SAMPLE_SENT
from tests.reports.test_role_reports import section


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def render(config_path: Path, name: str) -> str:
    summary, rendered = run_plain(load_config(config_path), parse_period(SAMPLE_PERIOD), dry_run=True,
                                  generated_at=SAMPLE_SENT)
    assert summary["failed"] == []
    return rendered[name].markdown


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_ceo_ownership_windows_old_balance_sheets_and_skipped_rows(portfolio_copy):
    data = portfolio_copy.parent / "data"
    # A cap table of three thirds recorded as 33.33% each: 99.99%, which is 100% within rounding.
    (data / "queenofsandiego" / "cap_table.csv").write_text(
        "holder,share_class,ownership_percent\nA,Common,33.33\nB,Common,33.33\nC,Common,33.33\n", encoding="utf-8")
    # QueenofSanDiego counts customers over 60 days, the others over the default 90.
    edit(portfolio_copy, "customers: {path: data/queenofsandiego/customers.csv}",
         "customers: {path: data/queenofsandiego/customers.csv, window_days: 60}")
    # JADA: one unreadable customer row and one unreadable cap-table row, both skipped.
    edit(portfolio_copy, "customers: {path: data/jada/customers.csv}",
         "customers: {path: data/jada/customers.csv, on_bad_row: skip}")
    edit(portfolio_copy, "equity: {balance_sheet: data/jada/balance_sheet.csv, cap_table: data/jada/cap_table.csv}",
         "equity: {balance_sheet: data/jada/balance_sheet.csv, cap_table: data/jada/cap_table.csv, on_bad_row: skip}")
    with open(data / "jada" / "customers.csv", "a", encoding="utf-8") as handle:
        handle.write("JD-BAD,not a date,Website,12.00,,,\n")
    with open(data / "jada" / "cap_table.csv", "a", encoding="utf-8") as handle:
        handle.write("Nobody,Common,lots\n")
    # DangerousCentaur's only balance sheet is its Oct 31 close moved back to Jun 30, 2025.
    sheet = data / "dangerouscentaur" / "balance_sheet.csv"
    lines = [line for line in sheet.read_text(encoding="utf-8").splitlines() if line.startswith(("as_of", "2026-10-31"))]
    sheet.write_text("\n".join(line.replace("2026-10-31", "2025-06-30") for line in lines) + "\n", encoding="utf-8")

    summary, rendered = run_plain(load_config(portfolio_copy), parse_period(SAMPLE_PERIOD), dry_run=True,
                                  generated_at=SAMPLE_SENT)
    assert summary["failed"] == []
    ceo = rendered["portfolio-ceo"].markdown
    assert "QueenofSanDiego: recorded ownership adds up to" not in ceo
    growth = section(ceo, "## Growth: funnel, CAC and churn")
    assert ("Over each entity's own window (the last 60 days for QueenofSanDiego; the last 90 days for JADA, "
            "QuickDumpNow and DangerousCentaur):") in growth
    assert "90 days or each entity's own window" not in growth
    assert "*Leaves out rows that could not be read: 1 row of the customer sign-ups of JADA, so these figures may be low.*" in growth
    equity = section(ceo, "## Balance sheet and equity")
    assert "from the balance sheets of Jun 30, 2025 and Oct 31, 2026" in equity
    # Jun 30, 2025 to Nov 22, 2026: 365 + 31 (Jul) + 31 + 30 + 31 + 22 = 510 days, over the default 120.
    assert ("**Out of date:** the latest balance sheet on record for DangerousCentaur is 510 days old, so its "
            "figures may no longer describe the business.") in equity
    assert "*Leaves out rows that could not be read: 1 row of the balance sheet or cap table of JADA.*" in equity
    # Each entity's own figures are in its general manager brief, with the same notes.
    dangerous = rendered["dangerouscentaur-gm"].markdown
    assert "## Balance sheet, Jun 30, 2025" in dangerous
    assert "**Out of date:** this balance sheet is 510 days old" in dangerous
    jada = rendered["jada-gm"].markdown
    assert "## Balance sheet, Oct 31\n" in jada  # this year's date without the year
    assert "Leaves out 1 row of the balance sheet or cap table that could not be read." in jada
    assert "Leaves out 1 sign-up row that could not be read, so these figures may be low." in jada
    assert "## Customers, last 60 days" in rendered["queenofsandiego-gm"].markdown

def test_ceo_ownership_short_of_100_by_more_than_rounding_still_fires(portfolio_copy):
    (portfolio_copy.parent / "data" / "queenofsandiego" / "cap_table.csv").write_text(
        "holder,share_class,ownership_percent\nA,Common,33.33\nB,Common,33.33\nC,Common,33.2\n", encoding="utf-8")
    # 33.33 + 33.33 + 33.2 = 99.86: off by 0.14 points, more than the 0.05 allowed for rounding.
    assert "QueenofSanDiego: recorded ownership adds up to 99.9%, not 100%." in render(portfolio_copy, "portfolio-ceo")


def cmo_jada(config_path: Path) -> str:
    return section(section(render(config_path, "portfolio-cmo"), "## 30/60/90-day milestones"), "### JADA")


def test_cmo_new_customer_goal_scales_a_60_day_window_to_90_days_over_consecutive_months(portfolio_copy):
    data = portfolio_copy.parent / "data" / "jada"
    edit(portfolio_copy, "customers: {path: data/jada/customers.csv}",
         "customers: {path: data/jada/customers.csv, window_days: 60}")
    # September has no target: the last three full months are still Aug, Sep and Oct.
    edit(data / "targets.csv", "2026-09,6000.00\n", "")
    jada = cmo_jada(portfolio_copy)
    target = 3000 + 2500 + 2500  # targets.csv Dec, Jan, Feb
    actual = sum(Decimal(r["amount"]) for r in rows(data / "ledger.csv")
                 if r["account"] == "4000 Charter Revenue" and r["date"][:7] in ("2026-08", "2026-09", "2026-10"))
    # The 60 days to Nov 22 start on Sep 24.
    new = sum(1 for r in rows(data / "customers.csv") if "2026-09-24" <= r["first_purchase_date"] <= "2026-11-22")
    goal = math.ceil(Decimal(new) * 90 / 60 * target / actual)
    assert (f"The revenue target for Dec 2026 to Feb 2027 is {money(target)}, against {money(actual)} in Aug to Oct, "
            f"which brought {new} new customers in the last 60 days ({new * 90 / 60:.1f} per 90 days): at that "
            f"pace the target needs {goal} new customers in 90 days.") in jada


def test_cmo_channel_counts_never_pass_the_channels_planned(portfolio_copy):
    data = portfolio_copy.parent / "data" / "jada"
    # Viator marked n/a (not planned); Boatsetter in the listing order but not in the channels file (planned).
    edit(data / "channels.csv", "Viator,missing,No listing yet", "Viator,n/a,Not offered for charters")
    edit(portfolio_copy, "ota_channels: [Sailo, GetMyBoat, Viator]", "ota_channels: [Sailo, GetMyBoat, Viator, Boatsetter]")
    cmo = render(portfolio_copy, "portfolio-cmo")
    # The gap names the OTAs of the channels file that are planned: Viator (n/a) is not.
    assert "JADA has no live OTA listing (Sailo, GetMyBoat planned)." in section(cmo, "## Needs a decision")
    jada = section(section(cmo, "## 30/60/90-day milestones"), "### JADA")
    # Planned: 6 channels not n/a + Boatsetter = 7; live 3. OTAs to list: Sailo, GetMyBoat, Boatsetter.
    # 30 days: + the partial Google profile + Sailo = 5; 60: + GetMyBoat = 6; 90: + Boatsetter = 7.
    # Counted from the send date, Mon Nov 23: + 30, 60 and 90 days.
    assert "**By Dec 23, 2026 (30 days):** 5 of 7 channels live (today 3), 1 of 3 OTA listings live" in jada
    assert "**By Jan 22, 2027 (60 days):** 6 of 7 channels live (today 3), 2 of 3 OTA listings live" in jada
    assert "**By Feb 21, 2027 (90 days):** 7 of 7 channels live (today 3), 3 of 3 OTA listings live" in jada
    assert "List on Viator" not in jada


def test_cmo_case_study_does_not_pitch_an_event_already_past(portfolio_copy):
    edit(portfolio_copy, "event_date: 2026-12-31", "event_date: 2026-11-14")
    study = section(render(portfolio_copy, "portfolio-cmo"), "## Campaign case study: the email list")
    assert ("- JADA: the case study's event, New Year's Eve fireworks cruise, was on Nov 14, 2026 and is past, so no "
            "campaign is sized for it; name an upcoming event to size the next one.") in study
    assert "is the audience for **New Year's Eve fireworks cruise**" not in study
