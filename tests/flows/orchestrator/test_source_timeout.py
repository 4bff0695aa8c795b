"""portfolio.source_timeout_seconds: one tenant whose sources hang holds the run (or its shard) only that long;
what it had gathered is kept, the rest is unavailable with the reason, and the other tenants are untouched."""

from __future__ import annotations

import threading

import pytest

from flows.core.config import load_config
from flows.gather.gather import gather_tenants
from flows.plan.plan import RunPlan
from sources.registry import MetricSpec, SourceRegistry, Unavailable


def hanging_registry(hang_for: str, release: threading.Event, late: list[str]) -> SourceRegistry:
    registry = SourceRegistry()

    @registry.register("quick", "answers at once", [MetricSpec("quick.value", "a number", "number")])
    def quick(settings, context):
        return {"quick.value": 1}

    @registry.register("slow", "hangs for one tenant", [MetricSpec("slow.value", "a number", "number")],
                       looks_back=True)
    def slow(settings, context):
        if context.tenant_id == hang_for:
            release.wait(30)
            late.append(context.tenant_id)
        return {"slow.value": 2}

    return registry


@pytest.fixture
def config_with(portfolio_copy):
    def make(timeout: str):
        text = portfolio_copy.read_text().replace("portfolio:\n", f"portfolio:\n  source_timeout_seconds: {timeout}\n", 1)
        portfolio_copy.write_text(text.replace("    sources:\n", "    sources:\n      quick: {}\n      slow: {}\n"))
        return load_config(portfolio_copy)
    return make


def test_a_tenant_whose_sources_hang_is_given_up_on_and_the_others_are_gathered(config_with, sample_period):
    config = config_with("0.5")
    release, late = threading.Event(), []
    registry = hanging_registry("jada", release, late)
    plan = RunPlan(sample_period, [], [], gathers={
        ("jada", "quick"): ["quick.value"], ("jada", "slow"): ["slow.value"],
        ("queenofsandiego", "slow"): ["slow.value"]}, lookbacks={("jada", "slow"): ["slow.value"]})

    values = gather_tenants(config, plan, ["jada", "queenofsandiego"], registry)
    release.set()

    assert values["queenofsandiego"] == {"slow.value": 2}
    jada = values["jada"]
    assert jada["quick.value"] == 1  # gathered before the hang: kept
    for name in ("slow.value", "slow.value@previous", "slow.value@year_ago"):
        assert isinstance(jada[name], Unavailable), name
        assert "tenant jada's sources did not finish within 0.5 s (portfolio.source_timeout_seconds)" in \
            jada[name].reason
    # Released, the abandoned thread stops at its next result: the source's answer is dropped and the two
    # earlier periods of "slow", next in the plan, are never asked for (each would call the source again).
    for _ in range(100):
        if late:
            break
        threading.Event().wait(0.05)
    threading.Event().wait(0.3)
    assert late == ["jada"]


def test_without_a_limit_a_slow_tenant_is_waited_for(config_with, sample_period):
    config = config_with("null")
    release, late = threading.Event(), []
    threading.Timer(0.3, release.set).start()
    plan = RunPlan(sample_period, [], [], gathers={("jada", "slow"): ["slow.value"]})

    values = gather_tenants(config, plan, ["jada"], hanging_registry("jada", release, late))

    assert values == {"jada": {"slow.value": 2}} and late == ["jada"]


def test_a_zero_or_negative_limit_is_refused_naming_the_key(portfolio_copy):
    portfolio_copy.write_text(portfolio_copy.read_text().replace(
        "portfolio:\n", "portfolio:\n  source_timeout_seconds: 0\n", 1))
    with pytest.raises(Exception, match="source_timeout_seconds"):
        load_config(portfolio_copy)
