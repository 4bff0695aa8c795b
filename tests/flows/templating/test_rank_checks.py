"""rank_checks(): the N most critical shortfalls by severity then impact, and the rest summarised."""

from __future__ import annotations

from flows.templating.agenda import rank_checks
from flows.templating.environments import environment


def check(check_id: str, severity: str, tenant: str) -> dict[str, str]:
    return {"id": check_id, "severity": severity, "tenant_name": tenant, "message": f"{tenant}: {check_id}",
            "fix": f"Fix {check_id}"}


CHECKS = [check("few-channels", "medium", "A"), check("security", "high", "A"), check("runway", "critical", "B"),
          check("rules", "high", "B"), check("few-channels", "medium", "C"), check("kpis", "low", "A"),
          check("security", "high", "C")]


def test_severity_ranks_first_then_the_impact_order_then_the_given_order():
    ranked = rank_checks(CHECKS, 4, ["runway", "rules", "security"])
    assert [(c["id"], c["tenant_name"]) for c in ranked] == [
        ("runway", "B"), ("rules", "B"), ("security", "A"), ("security", "C")]
    assert (ranked.more, ranked.total) == (3, 7)


def test_the_rest_is_one_row_per_check_with_its_entities_in_rank_order():
    ranked = rank_checks(CHECKS, 2, ["runway", "rules", "security"])
    assert ranked.rest == [
        {"id": "security", "severity": "high", "fix": "Fix security", "entities": ["A", "C"], "count": 2, "owner": ""},
        {"id": "few-channels", "severity": "medium", "fix": "Fix few-channels", "entities": ["A", "C"], "count": 2, "owner": ""},
        {"id": "kpis", "severity": "low", "fix": "Fix kpis", "entities": ["A"], "count": 1, "owner": ""}]


def test_ids_missing_from_the_impact_order_rank_after_the_listed_ones_of_their_severity():
    ranked = rank_checks(CHECKS, 7, ["security"])
    assert [c["id"] for c in ranked][1:4] == ["security", "security", "rules"]
    assert ranked.rest == [] and ranked.more == 0


def test_templates_can_number_the_top_and_say_how_many_more():
    template = environment().from_string(
        "{% set top8 = rank_checks(checks, 2, ['runway']) %}{% for c in top8 %}{{ loop.index }}. {{ c.message }}\n"
        "{% endfor %}and {{ top8.more }} more: {% for g in top8.rest %}{{ g.fix }} ({{ names(g.entities) }}); {% endfor %}")
    assert template.render(checks=CHECKS) == (
        "1. B: runway\n2. A: security\nand 5 more: Fix rules (B); Fix security (C); Fix few-channels (A and C); "
        "Fix kpis (A); ")


def test_given_the_entities_ties_go_to_the_entity_needing_the_most_attention():
    checks = [dict(check("runway", "critical", name), tenant=name.lower()) for name in ("A", "B", "C")]
    entities = [{"id": "a", "attention": 10}, {"id": "b", "attention": 1000}, {"id": "c", "attention": 100}]
    assert [c["tenant_name"] for c in rank_checks(checks, 3, [], entities)] == ["B", "C", "A"]


def test_without_an_impact_list_the_front_matters_order_ranks_within_a_severity():
    # A report lists its checks most consequential first; evaluate_checks records that place as "rank".
    ranked_checks = [dict(check("security", "high", "A"), rank=5), dict(check("rules", "high", "B"), rank=1),
                     dict(check("runway", "critical", "C"), rank=9)]
    assert [c["id"] for c in rank_checks(ranked_checks, 3)] == ["runway", "rules", "security"]


def test_the_ceo_brief_ranks_its_shortfalls_by_the_order_of_its_checks():
    from flows.plan.definitions import load_definitions_or_raise
    from tests.conftest import PROJECT_ROOT

    ceo = next(d for d in load_definitions_or_raise(PROJECT_ROOT / "reports") if d.role == "ceo" and not d.variant)
    order = [c.spec.id for c in ceo.checks]
    # Cash and solvency first, missing data last: the order the brief's text promises.
    assert order[:2] == ["short-runway", "negative-equity"] and order[-1] == "missing-kpis"
    assert {c.spec.id for c in ceo.checks if c.spec.topic == "equity"} == {
        "negative-equity", "books-do-not-balance", "ownership-unrecorded", "no-cap-table"}


def test_the_rest_is_counted_per_owner_role_most_first_in_words():
    owners = {"security": "cto", "few-channels": "cmo", "kpis": "gm", "rules": "cfo", "runway": "cfo"}
    checks = [{**c, "owner": owners[c["id"]]} for c in CHECKS]
    ranked = rank_checks(checks, 2, ["runway", "rules", "security"])
    # Left out: security A and C (CTO), few-channels A and C (CMO), kpis A (general manager).
    assert ranked.rest_by_owner == [
        {"owner": "cmo", "count": 2, "words": "2 for the CMO"},
        {"owner": "cto", "count": 2, "words": "2 for the CTO"},
        {"owner": "gm", "count": 1, "words": "1 for the general manager"}]
