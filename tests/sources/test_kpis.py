"""KPI coverage: expected KPIs per role against what the tenant's configured data provides."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from flows.core.errors import SourceError
from sources.catalogue import SourceContext
from sources.kpis import gather_kpis

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "business"
TENANT_SOURCES = {"ledger": {"path": "ledger.csv"}, "marketing": {"channels": "channels.csv"}}
EXPECTED = {
    "cfo": ["finance.burn_rate", "finance.break_even_units"],
    "cmo": ["marketing.ota_listings", "marketing.website_sessions"],
    "ceo": ["sales.open_deal_count"],
}


def context(tenant_settings=None) -> SourceContext:
    return SourceContext("acme", "Acme", dt.date(2026, 9, 1), dt.date(2026, 9, 30), FIXTURES,
                         tenant_settings or {})


def test_each_expected_kpi_is_provided_or_missing_with_the_reason():
    figures = gather_kpis({"expected": EXPECTED, "sources": TENANT_SOURCES}, context())
    status = {(row["role"], row["kpi"]): (row["status"], row["reason"]) for row in figures["kpis.coverage"]}
    assert status[("cfo", "finance.burn_rate")] == ("provided", "")
    assert status[("cmo", "marketing.ota_listings")] == ("provided", "")
    # Configured source, but the figure cannot be computed without its settings.
    assert status[("cfo", "finance.break_even_units")][0] == "missing"
    assert "unit_economics is not set" in status[("cfo", "finance.break_even_units")][1]
    # No source provides it at all.
    assert status[("cmo", "marketing.website_sessions")][0] == "missing"
    assert "no source provides this metric" in status[("cmo", "marketing.website_sessions")][1]
    # The sales source exists but is not configured for this tenant.
    assert "'sales' is not configured" in status[("ceo", "sales.open_deal_count")][1]
    assert len(figures["kpis.missing"]) == 3
    assert figures["kpis.coverage_percent"] == 40.0  # 2 of 5


def test_sources_handed_over_in_the_context_take_precedence():
    settings = {"expected": {"cfo": ["finance.burn_rate"]}, "sources": {}}
    figures = gather_kpis(settings, context({"sources": TENANT_SOURCES}))
    assert figures["kpis.missing"] == []
    assert figures["kpis.coverage_percent"] == 100.0


@pytest.mark.parametrize("expected", [None, {}, {"cfo": "finance.burn_rate"}])
def test_a_malformed_expectation_is_named(expected):
    with pytest.raises(SourceError, match="sources.kpis.expected"):
        gather_kpis({"expected": expected}, context())


def test_a_run_derives_the_same_coverage_as_gathering_each_source_again(sample_config, sample_period):
    """In a run, KPI coverage comes from the values already gathered; on the sample portfolio it equals what
    gathering every expected KPI's source again (the standalone path) gives, for every tenant."""
    from flows.gather.gather import gather_all
    from flows.plan.definitions import load_definitions
    from flows.plan.plan import plan_run, source_context

    definitions, _ = load_definitions(sample_config.reports_path)
    plan = plan_run(sample_config, definitions, sample_period)
    values = gather_all(sample_config, plan)
    for tenant in sample_config.tenants:
        standalone = gather_kpis(tenant.sources["kpis"], source_context(sample_config, tenant, sample_period))
        derived = {name: values[tenant.id][name] for name in standalone}
        assert derived == standalone, tenant.id
        assert any(row["status"] == "provided" for row in derived["kpis.coverage"])
        assert any(row["status"] == "missing" for row in derived["kpis.coverage"])
