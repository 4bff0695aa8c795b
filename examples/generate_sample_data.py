"""Regenerate the sample portfolio's data files (deterministic: same seed, same files).

    python examples/generate_sample_data.py

The figures in the reports are computed from these files by the sources; nothing here is a
report number. All names, domains and addresses are fictional (reserved .example domains).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent / "data"
FIRST_MONTH = dt.date(2025, 10, 1)
MONTHS = 14  # 2025-10 .. 2026-11

# tenant id -> (monthly revenue lines, monthly expense lines); amounts are monthly means.
BUSINESSES = {
    "jada": {
        "revenue": [("Charter revenue", "4000 Charter Revenue", 2600)],
        "expenses": [("Marina slip", "6100 Marina", 1450), ("Fuel", "6200 Fuel", 520),
                     ("Insurance", "6300 Insurance", 610), ("Maintenance", "6400 Maintenance", 480),
                     ("AWS", "6500 Cloud Hosting", 19), ("Software", "6510 Software", 65),
                     ("Captain wages", "6600 Wages", 900)],
    },
    "queenofsandiego": {
        "revenue": [("Harbor cruise tickets", "4000 Ticket Revenue", 2400)],
        "expenses": [("Marina slip", "6100 Marina", 1100), ("Fuel", "6200 Fuel", 380),
                     ("Insurance", "6300 Insurance", 450), ("AWS", "6500 Cloud Hosting", 17),
                     ("Crew wages", "6600 Wages", 1300), ("Advertising", "6700 Advertising", 150)],
    },
    "quickdumpnow": {
        "revenue": [("Hauling jobs", "4000 Service Revenue", 1800)],
        "expenses": [("Dump fees", "6150 Disposal Fees", 520), ("Truck lease", "6250 Vehicle Lease", 690),
                     ("Fuel", "6200 Fuel", 360), ("Insurance", "6300 Insurance", 290),
                     ("AWS", "6500 Cloud Hosting", 14), ("Local ads", "6700 Advertising", 220)],
    },
    "dangerouscentaur": {
        "revenue": [("Studio projects", "4000 Project Revenue", 900)],
        "expenses": [("Contractors", "6800 Contractors", 1200), ("AWS", "6500 Cloud Hosting", 16),
                     ("Software", "6510 Software", 140), ("Coworking", "6900 Rent", 350)],
    },
}


def month_start(index: int) -> dt.date:
    year = FIRST_MONTH.year + (FIRST_MONTH.month - 1 + index) // 12
    month = (FIRST_MONTH.month - 1 + index) % 12 + 1
    return dt.date(year, month, 1)


def write_ledger(tenant: str, spec: dict, rng: random.Random) -> None:
    folder = HERE / tenant
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(MONTHS):
        start = month_start(index)
        seasonal = 1.0 + 0.25 * (1 if start.month in (6, 7, 8) else -0.4 if start.month in (12, 1, 2) else 0)
        for category, account, mean in spec["revenue"]:
            for part in range(3):
                day = start + dt.timedelta(days=5 + part * 9)
                amount = round(mean * seasonal / 3 * rng.uniform(0.8, 1.2), 2)
                rows.append((day.isoformat(), account, category, f"{amount:.2f}", f"{category} batch {part + 1}"))
        for category, account, mean in spec["expenses"]:
            day = start + dt.timedelta(days=rng.randint(1, 24))
            amount = round(mean * rng.uniform(0.9, 1.1), 2)
            rows.append((day.isoformat(), account, category, f"-{amount:.2f}", f"{category} {start:%b %Y}"))
    rows.sort()
    with (folder / "ledger.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "account", "category", "amount", "memo"])
        writer.writerows(rows)


def main() -> None:
    rng = random.Random(20261128)
    for tenant, spec in BUSINESSES.items():
        write_ledger(tenant, spec, rng)


if __name__ == "__main__":
    main()
