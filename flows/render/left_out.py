"""Tenants left out of a portfolio report: which required figures are unavailable for whom, a plain
reason for the email's first note, and the technical one for the run summary."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flows.core.config import TenantConfig
from flows.plan.definitions import ReportDefinition
from flows.plan.plan import MetricValues
from sources.registry import Unavailable, is_available


def value_reason(value: Any) -> str:
    return value.reason if isinstance(value, Unavailable) else "not gathered"


def missing_required(definition: ReportDefinition, tenant_ids: Iterable[str],
                     values: MetricValues) -> dict[str, list[tuple[str, Any]]]:
    """tenant id -> its required metrics that are unavailable (name, the Unavailable or None)."""
    missing: dict[str, list[tuple[str, Any]]] = {}
    for tenant_id in tenant_ids:
        for name in definition.front.metrics:
            value = values.get(tenant_id, {}).get(name)
            if not is_available(value) or name not in values.get(tenant_id, {}):
                missing.setdefault(tenant_id, []).append((name, value))
    return missing


# How an executive reads a metric namespace, for "why is this business not in the report".
NAMESPACE_WORDS = {"finance": "financial figures", "sales": "sales pipeline figures", "marketing": "marketing "
                   "figures", "aws": "AWS figures", "handoffs": "handoff notes", "kpis": "KPI coverage"}


def left_out_tenant(tenant: TenantConfig, unavailable: list[tuple[str, Any]]) -> dict[str, str]:
    """A tenant left out of a portfolio report: a plain reason for the email, the technical one for the run."""
    plain: list[str] = []
    for name, value in unavailable:
        namespace = name.split(".", 1)[0]
        words = NAMESPACE_WORDS.get(namespace, f"{namespace} figures")
        text = f"{words} unavailable ({value.plain})" if getattr(value, "plain", "") else f"{words} unavailable"
        if text not in plain:
            plain.append(text)
    by_reason: dict[str, list[str]] = {}
    for name, value in unavailable:
        by_reason.setdefault(value_reason(value), []).append(name)
    detail = "; ".join(f"{', '.join(names)}: {reason}" for reason, names in by_reason.items())
    return {"id": tenant.id, "name": tenant.name, "reason": "; ".join(plain), "detail": detail}


def left_out_notice(left_out: list[dict[str, str]], included: int) -> str:
    """The first note of a portfolio report that leaves tenants out: who, and why, plainly (plain text:
    the notes box shows it as written)."""
    names = "; ".join(f"{t['name']}: {t['reason']}" for t in left_out)
    covered = f"{included} business" + ("es" if included != 1 else "")
    return f"Not in this report: {names}. Every figure and total below covers the other {covered} only."
