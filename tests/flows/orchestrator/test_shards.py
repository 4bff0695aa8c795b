"""A sharded run's plain parts: how many shards, which tenants each takes, and one summary from the parent's
portfolio reports and every shard's own, each message once."""

from __future__ import annotations

import pytest

from flows.orchestrator.run import RunJob, in_scope
from flows.orchestrator.shards import (
    ShardResult,
    ShardRun,
    merge_shard_summaries,
    shard_count,
    shard_rows,
    split_shards,
    unfinished_shard_outcomes,
)
from flows.orchestrator.summary import Outcome


def test_a_number_of_shards_is_capped_by_the_tenants_and_auto_follows_tenants_and_workers():
    assert shard_count(1, 300) == 1 and shard_count(None, 300) == 1
    assert shard_count(6, 300) == 6 and shard_count(6, 4) == 4  # never a shard without a tenant
    # auto: one per 50 tenants, at most one per online worker, at least one.
    assert shard_count("auto", 300, online_workers=3) == 3
    assert shard_count("auto", 120, online_workers=8) == 3
    assert shard_count("auto", 4, online_workers=3) == 1 and shard_count("auto", 300, online_workers=0) == 1
    for bad in (0, -2, 2.5, True, "six"):
        with pytest.raises(ValueError, match="shards must be a whole number of at least 1 or \"auto\""):
            shard_count(bad, 300)


def test_shards_are_contiguous_and_near_equal_in_the_portfolios_order():
    tenants = [f"t{i:03d}" for i in range(300)]
    shards = split_shards(tenants, 6)
    assert [len(shard) for shard in shards] == [50] * 6 and sum(shards, []) == tenants
    assert [len(shard) for shard in split_shards(tenants[:7], 3)] == [3, 2, 2]


def test_a_shard_renders_its_tenants_own_reports_and_the_parent_the_portfolios(sample_config, sample_period):
    from flows.plan.definitions import load_definitions
    from flows.plan.plan import plan_run

    definitions, problems = load_definitions(sample_config.reports_path)
    plan = plan_run(sample_config, definitions, sample_period, None, ["jada", "quickdumpnow"], problems)
    tenant_side = {i.label for i in plan.instances if in_scope(i, "tenant")}
    portfolio_side = {i.label for i in plan.instances if in_scope(i, "portfolio")}
    assert tenant_side == {"gm/jada", "gm/quickdumpnow"}
    assert portfolio_side == {f"{role}/portfolio" for role in ("ceo", "cfo", "cmo", "cto", "accounting")}
    assert {i.label for i in plan.instances if in_scope(i, "all")} == tenant_side | portfolio_side
    with pytest.raises(ValueError, match="RunJob.scope must be one of all, tenant, portfolio"):
        RunJob(sample_config, sample_period, scope="shard")


def summary(sent=(), failed=(), warnings=()) -> dict:
    return {"period": "2026-W47", "run": "r", "sent": list(sent), "dry_run": [], "failed": list(failed),
            "skipped": [], "checks": [], "warnings": list(warnings), "actions": []}


def test_the_parents_summary_gains_every_shards_messages_once_and_names_a_shard_that_never_completed(
        sample_config, sample_period):
    from flows.plan.definitions import load_definitions
    from flows.plan.plan import plan_run

    definitions, problems = load_definitions(sample_config.reports_path)
    instances = plan_run(sample_config, definitions, sample_period, None, None, problems).instances
    broken = {"report": "broken", "tenant": "", "recipients": [], "reason": "reports/broken.md:3: bad YAML"}
    parent = summary(sent=[{"report": "ceo", "tenant": "portfolio"}], failed=[broken], warnings=["w0"])
    first = ShardResult(1, ["jada", "queenofsandiego"], {},
                        [Outcome("gm", "jada", [], "sent"), Outcome("gm", "queenofsandiego", [], "sent")],
                        summary(sent=[{"report": "gm", "tenant": "jada"}, {"report": "gm", "tenant": "queenofsandiego"}],
                                failed=[broken], warnings=["w1", "w0"]))
    runs = [ShardRun(1, ["jada", "queenofsandiego"], ["run-1"], "Completed"),
            ShardRun(2, ["quickdumpnow", "nobody"], ["run-2", "run-3"], "Crashed", "worker died")]

    unfinished = unfinished_shard_outcomes(runs, instances)
    merge_shard_summaries(parent, [first], runs, unfinished)

    assert [(s["report"], s["tenant"]) for s in parent["sent"]] == [
        ("ceo", "portfolio"), ("gm", "jada"), ("gm", "queenofsandiego")]
    assert parent["warnings"] == ["w0", "w1"]
    # The broken definition once; shard 2's tenant report as a failure saying what happened and what it means,
    # and a tenant without reports of its own named with its shard.
    assert [(f["report"], f["tenant"]) for f in parent["failed"]] == [
        ("broken", ""), ("gm", "quickdumpnow"), ("shard 2", "nobody")]
    assert "shard 2 did not complete after 2 attempt(s) (Crashed: worker died)" in parent["failed"][1]["reason"]
    assert [(o.report, o.tenant, o.status) for o in unfinished] == [
        ("gm", "quickdumpnow", "failed"), ("shard 2", "nobody", "failed")]
    assert [(s["shard"], s["attempts"], s["state"]) for s in parent["shards"]] == [(1, 1, "Completed"),
                                                                                 (2, 2, "Crashed")]
    assert [(row["tenants"], row["flow_runs"]) for row in shard_rows(parent["shards"])] == [
        ("2: jada, queenofsandiego", "run-1"), ("2: quickdumpnow, nobody", "run-2, run-3")]
    assert shard_rows([{**parent["shards"][0], "tenants": ["a", "b", "c", "d"]}])[0]["tenants"] == "4: a, b, c …"
