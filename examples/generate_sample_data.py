"""Regenerate the sample portfolio's data files (deterministic: same seed, same files).

    python examples/generate_sample_data.py

Writes, per tenant under examples/data/<tenant>/: the ledger (CSV, or XLSX for the studio, which
keeps its books in a spreadsheet), the chart of accounts, monthly revenue targets, the sales
pipeline, campaigns, (for JADA) the newsletter subscriber list, the customers file (sign-ups,
channels, acquisition cost, first purchase, churn), the balance sheet and cap table, and the last site
checks of its domain. Channel lists, handoff notes and the small repositories under repos/ are
hand-written and not touched here.

Nothing here is a report number: the reports compute burn, break-even, list size and the rest from
these files. The business shapes below are chosen so the computed figures for 2026-W47 read like
the real portfolio (portfolio burn about $7.3K a month, owner draws not counted as expenses, JADA
breaking even at about 6 charters a month, 3,676 newsletter subscribers, QuickDumpNow with no open deals). All names, domains and
addresses are fictional (reserved example domains only).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent / "data"
FIRST_MONTH = dt.date(2025, 10, 1)
MONTHS = 14  # 2025-10 .. 2026-11
EXPORTED_ON = dt.date(2026, 11, 20)  # the books were exported mid-November

# Units (charters, hauling jobs) sold per month, oldest first, 2025-10 .. 2026-11.
JADA_CHARTERS = [4, 2, 2, 1, 1, 2, 3, 4, 6, 7, 5, 4, 3, 1]
QDN_JOBS = [12, 11, 9, 8, 9, 11, 13, 14, 15, 15, 14, 13, 12, 6]
# Harbor cruise ticket takings are deposited weekly; monthly means by calendar month.
QOSD_TICKETS = {1: 1400, 2: 1500, 3: 2100, 4: 2600, 5: 3200, 6: 4300, 7: 4900, 8: 4200, 9: 3000,
                10: 2300, 11: 1700, 12: 1900}
# Studio invoices are lumpy: (month index, amount).
STUDIO_INVOICES = [(0, 3800), (1, 1500), (2, 2400), (4, 3100), (5, 900), (6, 2600), (7, 4200), (8, 1200),
                   (9, 2000), (10, 4100), (12, 3400), (13, 1800)]

# tenant -> category -> (account, monthly amount); the fixed monthly costs of each business.
FIXED_COSTS = {
    "jada": {"Marina slip": ("6100 Marina", 1450), "Insurance": ("6300 Insurance", 610),
             "Maintenance": ("6400 Maintenance", 750), "Boat loan": ("6450 Boat Loan", 1750),
             "AWS": ("6500 Cloud Hosting", 19), "Software": ("6510 Software", 65),
             "Advertising": ("6700 Advertising", 450), "Bookkeeping": ("6850 Bookkeeping", 120)},
    "queenofsandiego": {"Marina slip": ("6100 Marina", 1100), "Fuel": ("6200 Fuel", 380),
                        "Insurance": ("6300 Insurance", 450), "Maintenance": ("6400 Maintenance", 400),
                        "AWS": ("6500 Cloud Hosting", 17), "Software": ("6510 Software", 40),
                        "Crew wages": ("6600 Wages", 2600), "Advertising": ("6700 Advertising", 450)},
    "quickdumpnow": {"Truck lease": ("6250 Vehicle Lease", 690), "Insurance": ("6300 Insurance", 290),
                     "AWS": ("6500 Cloud Hosting", 14), "Software": ("6510 Software", 30),
                     "Helper wages": ("6600 Wages", 1900), "Local ads": ("6700 Advertising", 400),
                     "Owner draw": ("3100 Owner Draws", 400)},
    "dangerouscentaur": {"Contractors": ("6800 Contractors", 4200), "AWS": ("6500 Cloud Hosting", 16),
                         "Software": ("6510 Software", 180), "Coworking": ("6900 Rent", 350),
                         "Bookkeeping": ("6850 Bookkeeping", 100)},
}

INCOME_ACCOUNTS = {"jada": "4000 Charter Revenue", "queenofsandiego": "4000 Ticket Revenue",
                   "quickdumpnow": "4000 Hauling Revenue", "dangerouscentaur": "4000 Project Revenue"}
PER_UNIT_ACCOUNTS = {"Fuel": "6200 Fuel", "Captain wages": "6600 Wages", "Cleaning": "6650 Cleaning",
                     "Dump fees": "6150 Disposal Fees"}
ACCOUNT_NAMES = {"3100 Owner Draws": ("Owner draws", "equity")}


def month_start(index: int) -> dt.date:
    year = FIRST_MONTH.year + (FIRST_MONTH.month - 1 + index) // 12
    month = (FIRST_MONTH.month - 1 + index) % 12 + 1
    return dt.date(year, month, 1)


def write_csv(path: Path, header: list[str], rows: list[tuple]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def fixed_rows(tenant: str, rng: random.Random) -> list[tuple]:
    rows = []
    for index in range(MONTHS):
        start = month_start(index)
        for category, (account, mean) in FIXED_COSTS[tenant].items():
            day = start + dt.timedelta(days=rng.randint(1, 18))
            # Rent-like costs are exact; the rest wobble a little month to month.
            steady = category in ("Marina slip", "Boat loan", "Truck lease", "Coworking", "Owner draw")
            amount = mean if steady else round(mean * rng.uniform(0.92, 1.08), 2)
            rows.append((day, account, category, -amount, f"{category} {start:%b %Y}"))
    return rows


def jada_rows(rng: random.Random) -> list[tuple]:
    rows = fixed_rows("jada", rng)
    for index, charters in enumerate(JADA_CHARTERS):
        start = month_start(index)
        for number in range(charters):
            day = start + dt.timedelta(days=2 + number * 26 // max(charters, 1))
            four_hour = rng.random() < 0.7
            price = 1450 if four_hour else 950
            kind = "4-hour charter" if four_hour else "2-hour sunset charter"
            rows.append((day, "4000 Charter Revenue", "Charter revenue", price, f"{kind} {day:%b %d}"))
            rows.append((day, "6200 Fuel", "Fuel", -round(rng.uniform(105, 150), 2), f"Fuel for charter {day:%b %d}"))
            rows.append((day, "6600 Wages", "Captain wages", -300 if four_hour else -200,
                         f"Captain, charter {day:%b %d}"))
            rows.append((day + dt.timedelta(days=1), "6650 Cleaning", "Cleaning", -60, f"Cleaning after {day:%b %d}"))
    # A card payment nobody filed: the audit lists it as uncategorised.
    rows.append((dt.date(2026, 9, 17), "6400 Maintenance", "", -38.40, "Chandlery card payment"))
    return rows


def qosd_rows(rng: random.Random) -> list[tuple]:
    rows = fixed_rows("queenofsandiego", rng)
    for index in range(MONTHS):
        start = month_start(index)
        mean = QOSD_TICKETS[start.month]
        for week in range(4):
            day = start + dt.timedelta(days=6 + week * 7)
            amount = round(mean / 4 * rng.uniform(0.85, 1.15), 2)
            rows.append((day, "4000 Ticket Revenue", "Ticket sales", amount, f"Ticketing payout week {week + 1}"))
    return rows


def qdn_rows(rng: random.Random) -> list[tuple]:
    rows = fixed_rows("quickdumpnow", rng)
    for index, jobs in enumerate(QDN_JOBS):
        start = month_start(index)
        for number in range(jobs):
            day = start + dt.timedelta(days=1 + number * 27 // jobs)
            price = rng.choice([180, 240, 260, 320, 380])
            rows.append((day, "4000 Hauling Revenue", "Hauling jobs", price, f"Job {day:%m%d}-{number + 1}"))
            rows.append((day, "6150 Disposal Fees", "Dump fees", -round(price * 0.22, 2), f"Dump fee job {day:%m%d}-{number + 1}"))
        rows.append((start + dt.timedelta(days=20), "6200 Fuel", "Fuel", -round(jobs * 28 * rng.uniform(0.9, 1.1), 2),
                     f"Fuel {start:%b %Y}"))
    # Posted to an account the chart does not have; the ledger's skip policy lists it as a problem.
    rows.append((dt.date(2026, 9, 23), "6260 Truck Repairs", "Maintenance", -85, "Tyre patch"))
    return rows


def studio_rows(rng: random.Random) -> list[tuple]:
    rows = fixed_rows("dangerouscentaur", rng)
    for index, amount in STUDIO_INVOICES:
        day = month_start(index) + dt.timedelta(days=rng.randint(8, 25))
        rows.append((day, "4000 Project Revenue", "Client projects", amount, f"Invoice {day:%Y%m}-01"))
    rows.append((dt.date(2026, 10, 14), "6510 Software", "", -640, "Card payment, receipt missing"))
    return rows


def write_ledger(tenant: str, rows: list[tuple]) -> None:
    rows = sorted((r for r in rows if r[0] <= EXPORTED_ON), key=lambda r: (r[0], r[1], r[4]))
    if tenant == "dangerouscentaur":
        write_xlsx_ledger(HERE / tenant / "ledger.xlsx", rows)
        return
    write_csv(HERE / tenant / "ledger.csv", ["date", "account", "category", "amount", "memo"],
              [(d.isoformat(), account, category, f"{amount:.2f}", memo) for d, account, category, amount, memo in rows])


def write_xlsx_ledger(path: Path, rows: list[tuple]) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Ledger"
    sheet.append(["Date", "Account", "Category", "Amount", "Memo"])
    for day, account, category, amount, memo in rows:
        sheet.append([day, account, category or None, amount, memo])
        sheet.cell(sheet.max_row, 1).number_format = "yyyy-mm-dd"
        sheet.cell(sheet.max_row, 4).number_format = "#,##0.00"
    stamp = dt.datetime(2026, 11, 20, 9, 0)
    workbook.properties.created = stamp
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    workbook.save(buffer)
    # openpyxl stamps "now" into the zip entries and docProps; fixing both keeps reruns byte-identical.
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "docProps/core.xml":
                data = re.sub(rb"<dcterms:modified([^>]*)>[^<]*<", rb"<dcterms:modified\1>2026-11-20T09:00:00Z<", data)
            target.writestr(zipfile.ZipInfo(item.filename, date_time=(2026, 11, 20, 9, 0, 0)), data,
                            compress_type=zipfile.ZIP_DEFLATED)


def write_chart(tenant: str, rows: list[tuple]) -> None:
    accounts = sorted({r[1] for r in rows} - {"6260 Truck Repairs"})
    chart = []
    for account in accounts:
        name, kind = ACCOUNT_NAMES.get(account, (account.split(" ", 1)[1], "income" if account[0] == "4" else "expense"))
        chart.append((account, name, kind))
    chart.append(("1000 Operating Account", "Operating bank account", "asset"))
    write_csv(HERE / tenant / "accounts.csv", ["account", "name", "type"], sorted(chart))


# Monthly revenue targets 2026-01 .. 2027-03: the owners' plan, above last year's actuals.
TARGETS = {
    "jada": [2000, 2000, 3000, 4500, 6000, 8500, 10000, 7500, 6000, 4500, 3000, 3000, 2500, 2500, 3500],
    "queenofsandiego": [1500, 1600, 2200, 2800, 3400, 4500, 5200, 4500, 3300, 2600, 2000, 2200, 1700, 1800, 2500],
    "quickdumpnow": [2200, 2400, 2800, 3200, 3600, 3800, 3800, 3600, 3400, 3200, 2800, 2600, 2400, 2600, 3000],
    "dangerouscentaur": [3000, 3000, 3000, 3000, 3000, 3000, 3500, 3500, 3500, 3500, 3500, 3500, 4000, 4000, 4000],
}


def write_targets(tenant: str) -> None:
    months = [f"2026-{m:02d}" for m in range(1, 13)] + [f"2027-{m:02d}" for m in range(1, 4)]
    write_csv(HERE / tenant / "targets.csv", ["month", "target"],
              [(month, f"{target:.2f}") for month, target in zip(months, TARGETS[tenant], strict=True)])


PIPELINES = {
    "jada": [("Harborview Dental team outing (fictional)", "proposal", 2900, "2026-12-05"),
             ("Wedding party charter, Okafor family", "negotiation", 1450, "2026-11-18"),
             ("Corporate sunset series, Example Ventures", "lead", 5800, "2027-02-15"),
             ("Birthday charter, Lindqvist", "won", 1450, "2026-11-19"),
             ("Photo shoot charter, Studio Nine (fictional)", "lost", 950, "2026-10-30")],
    "queenofsandiego": [("School field trip, Example Elementary", "qualified", 1800, "2027-03-10"),
                        ("Conference group cruise", "proposal", 4200, "2027-04-22"),
                        ("Holiday lights cruise block", "won", 2600, "2026-11-17")],
    "quickdumpnow": [],  # jobs are booked same-day; nothing is in the pipeline
    "dangerouscentaur": [("Booking widget for a surf school (fictional)", "proposal", 6500, "2026-12-20"),
                         ("Brand refresh, Example Bakery", "qualified", 3200, "2027-01-31"),
                         ("Annual hosting and care plan", "negotiation", 2400, "2026-11-15"),
                         ("Mobile app prototype", "lost", 9000, "2026-09-30")],
}

CAMPAIGNS = {
    "jada": [("Summer weekday charters", "Email list", "2026-06-01", "2026-08-31", "0", "41"),
             ("Fall sunset charters", "Email list", "2026-10-01", "2026-11-30", "0", "18"),
             ("Instagram boosted posts", "Instagram", "2026-09-15", "2026-12-15", "450.00", "12"),
             ("Holiday gift cards", "Email list", "2026-12-01", "2026-12-24", "0", "0")],
    "queenofsandiego": [("Holiday lights cruises", "Viator", "2026-11-01", "2026-12-31", "600.00", "35"),
                        ("Summer harbor tours", "Website", "2026-05-15", "2026-09-05", "1200.00", "96")],
    "quickdumpnow": [("Neighbourhood flyers", "Print", "2026-09-01", "2026-10-31", "380.00", "14"),
                     ("Google local ads", "Google Business profile", "2026-10-01", "2026-12-31", "900.00", "22")],
    "dangerouscentaur": [],
}


def write_sales_and_campaigns(tenant: str) -> None:
    write_csv(HERE / tenant / "pipeline.csv", ["deal", "stage", "value", "expected_close"],
              [(deal, stage, f"{value:.2f}", close) for deal, stage, value, close in PIPELINES[tenant]])
    write_csv(HERE / tenant / "campaigns.csv", ["campaign", "channel", "start", "end", "spend", "leads"],
              CAMPAIGNS[tenant])


def write_subscribers(rng: random.Random) -> None:
    """JADA's newsletter export: 3,676 people subscribed at the period end, plus the rows that do not count.

    Unsubscribed and bounced addresses, a re-export duplicate in different letter case, and sign-ups
    after the period end are all in the file, so the count has to be computed, not read off the row count.
    """
    subscribed, unsubscribed, bounced, duplicates, later = 3676, 118, 23, 31, 9
    rows = []
    start = dt.date(2019, 4, 1)
    span = (dt.date(2026, 11, 22) - start).days
    for number in range(1, subscribed + unsubscribed + bounced + 1):
        day = start + dt.timedelta(days=rng.randint(0, span))
        status = "subscribed" if number <= subscribed else "unsubscribed" if number <= subscribed + unsubscribed \
            else "bounced"
        rows.append((f"guest{number:05d}@example.com", status, day.isoformat()))
    for number in rng.sample(range(1, subscribed + 1), duplicates):
        rows.append((f"Guest{number:05d}@Example.com", "subscribed", "2026-03-02"))
    for number in range(1, later + 1):
        rows.append((f"newguest{number:03d}@example.com", "subscribed", "2026-11-25"))
    rows.sort(key=lambda row: (row[2], row[0]))
    write_csv(HERE / "jada" / "subscribers.csv", ["email", "status", "subscribed_on"], rows)


# What a visitor met on each home page when the site checks last ran (the end of the sample week):
# (TLS certificate expiry, http:// redirects to https://, home page response in ms, HTTP status).
SITE_CHECKS = {
    "jada": ("2027-02-10", "yes", 640, 200),
    "queenofsandiego": ("2026-12-04", "yes", 1120, 200),   # certificate renewal is due
    "quickdumpnow": ("2027-05-01", "no", 3450, 200),       # no redirect, and a slow quote page
    "dangerouscentaur": ("2027-03-15", "yes", 890, 200),
}


def write_site_checks(tenant: str) -> None:
    expires, redirects, response_ms, status = SITE_CHECKS[tenant]
    write_csv(HERE / tenant / "site-checks.csv",
              ["domain", "checked_on", "tls_expires", "redirects_to_https", "response_ms", "status", "error"],
              [(f"{tenant}.example", "2026-11-22", expires, redirects, response_ms, status, "")])
# ---- customers (funnel, CAC, churn) and the balance sheet / cap table -------------------------------
# Drawn from their own random generator so the files above stay byte-identical when these change.

# tenant -> channel -> (acquisition cost per sign-up, chance a sign-up becomes a customer). The paid
# channels' costs are their campaigns' spend per lead (campaigns.csv: JADA's Instagram $450 / 12 leads,
# QuickDumpNow's Google local ads $900 / 22 and flyers $380 / 14, QueenofSanDiego's website $1,200 / 96).
CUSTOMER_CHANNELS = {
    "jada": {"Email list": (0, 0.35), "Instagram": (37.50, 0.25), "Website": (0, 0.30), "Referral": (0, 0.60)},
    "queenofsandiego": {"Viator": (18.00, 0.45), "Website": (12.50, 0.35), "Referral": (0, 0.55)},
    "quickdumpnow": {"Google Business profile": (40.91, 0.55), "Print": (27.14, 0.40), "Referral": (0, 0.70)},
    "dangerouscentaur": {"Referral": (0, 0.40), "LinkedIn": (55.00, 0.20), "Conference": (300.00, 0.35)},
}
# tenant -> (sign-ups a month, monthly chance a customer leaves, typical monthly value, id prefix)
CUSTOMER_SHAPES = {
    "jada": (6, 0.03, 120, "JC"),
    "queenofsandiego": (9, 0.04, 85, "QS"),
    "quickdumpnow": (6, 0.09, 260, "QD"),
    "dangerouscentaur": (3, 0.04, 400, "DC"),
}
CUSTOMERS_UNTIL = dt.date(2026, 11, 26)  # a few sign-ups after the sample week's end, which must not count


def write_customers(tenant: str, rng: random.Random) -> None:
    per_month, leave_chance, value, prefix = CUSTOMER_SHAPES[tenant]
    channels = CUSTOMER_CHANNELS[tenant]
    names = list(channels)
    rows = []
    number = 0
    for index in range(MONTHS):
        start = month_start(index)
        for _ in range(per_month + rng.randint(-1, 2)):
            signup = start + dt.timedelta(days=rng.randint(0, 27))
            if signup > CUSTOMERS_UNTIL:
                continue
            number += 1
            channel = rng.choice(names)
            cost, conversion = channels[channel]
            bought = churned = None
            if rng.random() < conversion:
                bought = signup + dt.timedelta(days=rng.randint(1, 30))
                day = bought + dt.timedelta(days=30)
                while day <= CUSTOMERS_UNTIL:
                    if rng.random() < leave_chance:
                        churned = day - dt.timedelta(days=rng.randint(0, 29))
                        break
                    day += dt.timedelta(days=30)
                if bought > CUSTOMERS_UNTIL:
                    bought = None
            monthly = f"{value * rng.uniform(0.6, 1.4):.2f}" if bought else ""
            rows.append((f"{prefix}-{number:04d}", signup.isoformat(), channel, f"{cost:.2f}",
                         bought.isoformat() if bought else "", churned.isoformat() if churned else "", monthly))
    write_csv(HERE / tenant / "customers.csv", ["customer_id", "signup_date", "acquisition_channel",
                                                "acquisition_cost", "first_purchase_date", "churn_date",
                                                "monthly_value"], rows)


# The opening balances in examples/portfolio.yaml (sources.ledger.opening_balance): the balance sheet's
# cash is the ledger's cash at each close, so the two agree on the same date.
OPENING_BALANCES = {"jada": 48000, "queenofsandiego": 58000, "quickdumpnow": 36000, "dangerouscentaur": 48000}
CLOSES = (dt.date(2026, 9, 30), dt.date(2026, 10, 31))
# tenant -> [(section, item, amount at the September close, amount at the October close)]; equity is made
# to balance with a retained earnings (or accumulated deficit) line, as a bookkeeper's close would.
BALANCE_LINES = {
    "jada": [("asset", "Vessel, at cost less depreciation", 142800, 142000),
             ("asset", "Accounts receivable", 950, 1450),
             ("liability", "Boat loan", 97900, 96500), ("liability", "Customer deposits", 1450, 2900),
             ("liability", "Credit card", 410, 640), ("equity", "Owner contributions", 40000, 40000)],
    "queenofsandiego": [("asset", "Harbor cruise vessel", 88600, 88000), ("asset", "Prepaid insurance", 1800, 1350),
                        ("liability", "Gift certificates outstanding", 2900, 3400),
                        ("liability", "Marina fees payable", 1100, 1100),
                        ("equity", "Owner contributions", 60000, 60000)],
    "quickdumpnow": [("asset", "Trailer and tools", 8100, 7800), ("liability", "Truck lease", 14900, 14200),
                     ("liability", "Credit card", 1650, 1900), ("equity", "Owner contributions", 20000, 20000)],
    "dangerouscentaur": [("asset", "Accounts receivable", 2000, 4100), ("asset", "Computer equipment", 3750, 3600),
                         ("liability", "Loan from owner", 32000, 32000),
                         ("liability", "Deferred revenue, prepaid care plans", 2400, 2400),
                         ("liability", "Credit card", 900, 1100), ("equity", "Owner's capital", 5000, 5000)],
}
# Cap tables: by shares, or by recorded percent (QueenofSanDiego's adds to 90%: a stake is unrecorded).
# QuickDumpNow has none on record.
CAP_TABLES = {
    "jada": ("shares", [("Sample Holdings LLC", "Class A", 750000), ("Jordan Reyes (operator)", "Class B", 250000)]),
    "queenofsandiego": ("ownership_percent", [("Sample Holdings LLC", "Common", 60),
                                              ("Ana Whitfield (captain)", "Common", 30)]),
    "dangerouscentaur": ("shares", [("Sample Holdings LLC", "Membership units", 1000)]),
}


def write_equity(tenant: str, ledger: list[tuple]) -> None:
    rows = []
    for index, close in enumerate(CLOSES):
        cash = round(OPENING_BALANCES[tenant] + sum(r[3] for r in ledger if r[0] <= min(close, EXPORTED_ON)), 2)
        lines = [("cash", "Operating account", cash)] + [(section, item, amounts[index])
                                                          for section, item, *amounts in BALANCE_LINES[tenant]]
        assets = sum(amount for section, _, amount in lines if section in ("cash", "asset"))
        liabilities = sum(amount for section, _, amount in lines if section == "liability")
        contributed = sum(amount for section, _, amount in lines if section == "equity")
        retained = round(assets - liabilities - contributed, 2)
        lines.append(("equity", "Retained earnings" if retained >= 0 else "Accumulated deficit", retained))
        rows += [(close.isoformat(), section, item, f"{amount:.2f}") for section, item, amount in lines]
    write_csv(HERE / tenant / "balance_sheet.csv", ["as_of", "section", "item", "amount"], rows)
    if tenant in CAP_TABLES:
        column, holders = CAP_TABLES[tenant]
        write_csv(HERE / tenant / "cap_table.csv", ["holder", "share_class", column], holders)


def main() -> None:
    rng = random.Random(20261128)
    ledgers = {}
    builders = {"jada": jada_rows, "queenofsandiego": qosd_rows, "quickdumpnow": qdn_rows,
                "dangerouscentaur": studio_rows}
    for tenant, build in builders.items():
        rows = build(rng)
        ledgers[tenant] = rows
        write_ledger(tenant, rows)
        write_chart(tenant, rows)
        write_targets(tenant)
        write_sales_and_campaigns(tenant)
        write_site_checks(tenant)
    write_subscribers(rng)
    growth = random.Random(20261130)
    for tenant in builders:
        write_customers(tenant, growth)
        write_equity(tenant, ledgers[tenant])


if __name__ == "__main__":
    main()
