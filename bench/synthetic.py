"""Synthetic portfolios of N tenants, made from the sample portfolio: same file shapes, other names
and numbers (every CSV amount column is scaled per tenant)."""

from __future__ import annotations

import copy
import csv
import json
import re
import shutil
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = PROJECT_ROOT / "examples" / "portfolio.yaml"
AMOUNT_COLUMNS = {"amount", "value", "spend", "target"}

# A tenant-scope report so the benchmark covers both scopes.
TENANT_REPORT = """---
role: owner
title: Owner weekly brief
subject: "{{ tenant.name }}: week {{ period.label }}"
scope: tenant
metrics: [finance.burn_rate, finance.cash_on_hand, finance.runway_months, finance.monthly, handoffs.open_items]
checks:
  - id: short-runway
    when: finance.runway_months < 6
    severity: critical
    message: "{{ tenant.name }} has {{ months(finance.runway_months) }} of runway."
---
# {{ tenant.name }}

Burn {{ money(finance.burn_rate) }} a month, cash {{ money(finance.cash_on_hand) }},
runway {{ months(finance.runway_months) }}.

{{ table(finance.monthly[-6:], columns={"month": "Month", "revenue": "Revenue", "expenses": "Expenses"},
         formats={"revenue": "money", "expenses": "money"}) }}

{% for item in handoffs.open_items %}
- [ ] {{ item.text }}
{% endfor %}
"""


def _scale_csv(path: Path, factor: float) -> None:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    header = [column.strip().lower() for column in rows[0]]
    columns = [i for i, name in enumerate(header) if name in AMOUNT_COLUMNS]
    if not columns:
        return
    for row in rows[1:]:
        for i in columns:
            if i < len(row):
                try:
                    number = float(re.sub(r"[^\d.\-]", "", row[i]))
                except ValueError:
                    continue  # leave bad cells bad: the sources must report them, not the generator
                row[i] = f"{number * factor:.2f}"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)


def _retarget_snapshot(path: Path, old_tenant: str, new_tenant: str) -> None:
    """An AWS snapshot names its tenant (the source refuses another tenant's snapshot), and so do its findings."""

    def walk(value):
        if isinstance(value, dict):
            return {k: (new_tenant if k == "tenant" and v == old_tenant else walk(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    path.write_text(json.dumps(walk(json.loads(path.read_text(encoding="utf-8"))), indent=1), encoding="utf-8")


def make_portfolio(tenant_count: int, destination: Path, *, with_tenant_report: bool = True) -> Path:
    """Write a portfolio of ``tenant_count`` tenants under ``destination``; returns the config path."""
    sample = yaml.safe_load(SAMPLE.read_text())
    base_tenants = sample["tenants"]
    destination.mkdir(parents=True, exist_ok=True)
    reports = destination / "reports"
    shutil.copytree(PROJECT_ROOT / "reports", reports, dirs_exist_ok=True)
    if with_tenant_report:
        (reports / "owner.md").write_text(TENANT_REPORT, encoding="utf-8")
    tenants = []
    for index in range(tenant_count):
        base = base_tenants[index % len(base_tenants)]
        tenant_id = f"t{index:03d}-{base['id']}"
        data = destination / "data" / tenant_id
        shutil.copytree(SAMPLE.parent / "data" / base["id"], data, dirs_exist_ok=True)
        factor = 0.6 + (index % 9) * 0.1
        for csv_file in data.rglob("*.csv"):
            _scale_csv(csv_file, factor)
        for snapshot in data.rglob("aws-snapshot*.json"):
            _retarget_snapshot(snapshot, base["id"], tenant_id)
        text = yaml.safe_dump(base)
        text = text.replace(f"data/{base['id']}/", f"data/{tenant_id}/")
        tenant = yaml.safe_load(text)
        tenant = copy.deepcopy(tenant)
        tenant.update(id=tenant_id, name=f"{base['name']} {index:03d}",
                      domains=[f"{tenant_id}.example"],
                      recipients={role: [f"{role}@{tenant_id}.example"] for role in [*base.get("recipients", {}), "owner"]})
        tenants.append(tenant)
    config = dict(sample)
    config.update(tenants=tenants, reports_dir="reports")
    config["delivery"] = {**sample.get("delivery", {}), "backend": "outbox", "outbox_dir": "outbox"}
    path = destination / "portfolio.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path
