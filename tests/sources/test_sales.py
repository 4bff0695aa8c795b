"""Sales pipeline source, against tests/fixtures/business/pipeline*.csv."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from flows.core.errors import SourceError
from sources.catalogue import REGISTRY, SourceContext, Unavailable
from sources.sales import gather_sales

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "business"


def context() -> SourceContext:
    return SourceContext("acme", "Acme", dt.date(2026, 9, 1), dt.date(2026, 9, 30), FIXTURES)


def test_open_pipeline_counts_only_open_stages_and_sums_their_values():
    figures = gather_sales({"pipeline": "pipeline.csv"}, context())
    # Open: Harbor party 1,000 (lead), School trip 2,500 (proposal), Conference 500 (Negotiation).
    assert figures["sales.open_deal_count"] == 3
    assert figures["sales.open_pipeline_value"] == Decimal("4000")
    assert [d["deal"] for d in figures["sales.open_deals"]] == ["School trip", "Harbor party", "Conference"]
    # School trip was expected to close on 2026-09-20, before the period end, and is still open.
    assert [d["deal"] for d in figures["sales.overdue_deals"]] == ["School trip"]
    assert figures["sales.won_value_period"] == Decimal("3000")
    assert figures["sales.pipeline_problems"] == []


def test_a_header_only_pipeline_is_empty_not_unavailable():
    figures = gather_sales({"pipeline": "pipeline_empty.csv"}, context())
    assert figures["sales.open_deal_count"] == 0
    assert figures["sales.open_pipeline_value"] == Decimal("0")
    assert figures["sales.open_deals"] == []


def test_bad_rows_fail_naming_the_cell_or_are_skipped_and_listed():
    with pytest.raises(SourceError, match=r"pipeline_bad.csv:2: column 'stage'.*\(value 'maybe'\)"):
        gather_sales({"pipeline": "pipeline_bad.csv"}, context())
    figures = gather_sales({"pipeline": "pipeline_bad.csv", "on_bad_row": "skip"}, context())
    assert figures["sales.open_deal_count"] == 0
    assert len(figures["sales.pipeline_problems"]) == 2
    assert "pipeline_bad.csv:3: column 'expected_close'" in figures["sales.pipeline_problems"][1]
    assert "'next week'" in figures["sales.pipeline_problems"][1]


def test_a_missing_pipeline_file_makes_the_metrics_unavailable_with_the_path():
    values = REGISTRY.gather("sales", ["sales.open_deal_count"], {"pipeline": "nowhere.csv"}, context())
    assert isinstance(values["sales.open_deal_count"], Unavailable)
    assert str(FIXTURES / "nowhere.csv") in values["sales.open_deal_count"].reason
