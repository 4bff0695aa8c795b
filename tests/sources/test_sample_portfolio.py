"""The sample portfolio's computed figures fall in the ranges the issue describes (2026-W47).

The ranges come from the issue, not from running the code: portfolio burn about $7-9K a month,
JADA breaking even at about 6 charters a month, 3,676 newsletter subscribers, no OTA listing for
the charter business, one entity with an empty pipeline, 12+ months of books.
"""

from __future__ import annotations

import filecmp
import importlib.util
import math
from decimal import Decimal
from pathlib import Path

import pytest

from flows.orchestrator.run import run_plain
from flows.plan.plan import source_context
from sources.catalogue import REGISTRY, is_available

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def figures(sample_config, sample_period):
    """Every metric of every configured source, per tenant, computed from the sample files."""
    result = {}
    for tenant in sample_config.tenants:
        context = source_context(sample_config, tenant, sample_period)
        values = {}
        for name, settings in tenant.sources.items():
            values.update(REGISTRY.gather(name, list(REGISTRY.sources[name].metrics), settings, context))
        result[tenant.id] = values
    return result


def test_portfolio_burn_is_seven_to_nine_thousand_a_month(figures):
    burns = [values["finance.burn_rate"] for values in figures.values()]
    assert all(is_available(b) and b > 0 for b in burns)
    assert Decimal(7000) <= sum(burns) <= Decimal(9000)


def test_the_charter_business_breaks_even_at_about_six_charters_a_month(figures):
    jada = figures["jada"]
    assert jada["finance.unit_economics"]["unit"] == "charter"
    assert 5.0 <= jada["finance.break_even_units"] <= 7.0
    assert math.ceil(jada["finance.break_even_units"]) == 6


def test_the_charter_business_has_3676_subscribers_and_no_ota_listing(figures):
    assert figures["jada"]["marketing.email_list_size"] == 3676
    assert figures["jada"]["marketing.ota_listings"] == 0
    assert {row["channel"] for row in figures["jada"]["marketing.channels"] if row["ota"]} == {
        "Sailo", "GetMyBoat", "Viator"}


def test_exactly_one_entity_has_an_empty_sales_pipeline(figures):
    empty = [tenant for tenant, values in figures.items() if values["sales.open_deal_count"] == 0]
    assert empty == ["quickdumpnow"]
    assert figures["quickdumpnow"]["sales.open_pipeline_value"] == 0


def test_every_entity_has_at_least_twelve_months_of_books(figures):
    for tenant, values in figures.items():
        assert len(values["finance.monthly"]) >= 12, tenant


def test_hosting_across_the_portfolio_is_fifty_to_eighty_four_dollars_a_month(figures):
    aws = sum(row["amount"] for values in figures.values() for row in values["finance.expenses_by_category"]
              if row["category"] == "AWS")
    assert Decimal(50) <= aws <= Decimal(84)


def test_the_sample_shows_each_kind_of_finding(figures):
    assert figures["quickdumpnow"]["finance.unknown_accounts"][0]["account"] == "6260 Truck Repairs"
    assert len(figures["quickdumpnow"]["finance.ledger_problems"]) == 1
    assert figures["dangerouscentaur"]["finance.uncategorised_expenses"][0]["where"].startswith("ledger.xlsx:")
    assert {n["file"] for n in figures["queenofsandiego"]["handoffs.stale_notes"]} == {"operations.md"}
    assert figures["jada"]["handoffs.blockers"]
    assert any("marketing.website_sessions" in item for item in figures["jada"]["kpis.missing"])
    for tenant, values in figures.items():
        unavailable = [name for name, value in values.items() if not is_available(value)]
        # Only what a tenant has not set up may be missing; nothing is unavailable through an error.
        assert all("is not set" in values[name].reason for name in unavailable), (tenant, unavailable)


def test_the_role_reports_render_against_the_sample(sample_config, sample_period):
    summary, rendered = run_plain(sample_config, sample_period, dry_run=True)
    assert not [failure for failure in summary["failed"] if failure["tenant"]]
    # five portfolio reports and one GM brief per tenant
    assert len(rendered) == 5 + len(sample_config.tenants)


def test_the_committed_sample_data_is_what_the_generator_writes(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("generate_sample_data", EXAMPLES / "generate_sample_data.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    monkeypatch.setattr(generator, "HERE", tmp_path)
    generator.main()
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written
    for relative in written:
        assert filecmp.cmp(tmp_path / relative, EXAMPLES / "data" / relative, shallow=False), relative
