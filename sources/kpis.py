"""KPI coverage: the KPIs each role expects, against what the tenant's data actually provides.

Settings (under ``sources.kpis``):
    expected  role -> list of metric names that role expects to see, e.g.
              {cfo: [finance.burn_rate, finance.break_even_units], cmo: [marketing.email_list_size]}
    sources   optional: other source settings to check against; by default the tenant's own
              (``context.tenant_settings['sources']``, which the pipeline provides).

Inside a run this is a derived source: the expected KPIs are gathered once with every other metric
and coverage is computed from those values (no source is read twice). A KPI is covered when its
source is configured and gathering it yields a value. It is missing when
no source provides that metric at all, when the source is not configured for the tenant, or when
the gathered value is unavailable (the reason is kept).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sources.errors import SourceError
from sources.registry import REGISTRY, MetricSpec, SourceContext, Unavailable, metric_words

METRICS = [
    MetricSpec("kpis.coverage", "Each expected KPI per role with its status "
               "(rows: role, kpi, status, reason).", "table"),
    MetricSpec("kpis.missing", "Expected KPIs the data does not provide, as 'role: metric (reason)'.", "list"),
    MetricSpec("kpis.missing_summary", "The missing KPIs in words with the role that expects each, for a brief "
               "(\"Break even units (CFO); Cac (CEO)\"); empty when none is missing.", "text"),
    MetricSpec("kpis.coverage_percent", "Share of expected KPIs that the data provides.", "percent"),
]


def _expected(settings: Mapping[str, Any], context: SourceContext) -> Mapping[str, list[str]]:
    expected = settings.get("expected")
    if not isinstance(expected, Mapping) or not expected:
        raise SourceError(f"tenant '{context.tenant_id}': sources.kpis.expected must map each role to a list "
                          f"of metric names")
    for role, names in expected.items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SourceError(f"tenant '{context.tenant_id}': sources.kpis.expected.{role} must be a list of "
                              f"metric names, got {names!r}")
    return expected


@REGISTRY.register("kpis", "Coverage of the KPIs each role expects.", METRICS)
def gather_kpis(settings: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    """Standalone: gathers the expected KPIs' sources itself. A run does not call this; it gathers the
    expected KPIs with everything else and derives coverage from those values (``coverage_from_values``)."""
    expected = _expected(settings, context)
    tenant_sources = context.tenant_settings.get("sources") or settings.get("sources") or {}
    if not isinstance(tenant_sources, Mapping):
        raise SourceError(f"tenant '{context.tenant_id}': sources.kpis.sources must be a mapping of source "
                          f"name -> settings")
    return kpi_coverage(expected, tenant_sources, context)


def expected_inputs(settings: Mapping[str, Any], context: SourceContext) -> list[str]:
    """Every metric some role expects (what a run must gather for KPI coverage)."""
    return list(dict.fromkeys(name for names in _expected(settings, context).values() for name in names))


def coverage_from_values(settings: Mapping[str, Any], values: Mapping[str, Any],
                         context: SourceContext) -> dict[str, Any]:
    return coverage(_expected(settings, context), values)


REGISTRY.derive_from("kpis", expected_inputs, coverage_from_values)


def kpi_coverage(expected: Mapping[str, list[str]], tenant_sources: Mapping[str, Any],
                 context: SourceContext) -> dict[str, Any]:
    known = REGISTRY.metrics
    wanted: dict[str, list[str]] = {}
    for names in expected.values():
        for name in names:
            if name in known and known[name].source != "kpis":
                wanted.setdefault(known[name].source, [])
                if name not in wanted[known[name].source]:
                    wanted[known[name].source].append(name)
    values: dict[str, Any] = {}
    for source_name, names in wanted.items():
        # Each source is gathered once, however many roles expect its metrics.
        values.update(REGISTRY.gather(source_name, names, tenant_sources.get(source_name), context))
    return coverage(expected, values)


def coverage(expected: Mapping[str, list[str]], values: Mapping[str, Any]) -> dict[str, Any]:
    """KPI coverage from gathered values: each expected KPI provided, or missing with the reason."""
    known = REGISTRY.metrics
    rows = []
    for role, names in expected.items():
        for name in names:
            if name not in known:
                hint = REGISTRY.suggest(name)
                reason = "no source provides this metric" + (f" (did you mean {hint}?)" if hint else "")
                rows.append({"role": role, "kpi": name, "status": "missing", "reason": reason})
            elif known[name].source == "kpis":
                rows.append({"role": role, "kpi": name, "status": "missing",
                             "reason": "KPI coverage cannot be a KPI of itself"})
            elif name not in values:
                rows.append({"role": role, "kpi": name, "status": "missing", "reason": "not gathered"})
            elif isinstance(values.get(name), Unavailable):
                rows.append({"role": role, "kpi": name, "status": "missing", "reason": values[name].reason})
            else:
                rows.append({"role": role, "kpi": name, "status": "provided", "reason": ""})
    provided = sum(1 for row in rows if row["status"] == "provided")
    return {
        "kpis.coverage": rows,
        "kpis.missing": [f"{r['role']}: {r['kpi']} ({r['reason']})" for r in rows if r["status"] == "missing"],
        "kpis.missing_summary": "; ".join(f"{metric_words(r['kpi'])} ({r['role'].upper()})"
                                          for r in rows if r["status"] == "missing"),
        "kpis.coverage_percent": round(provided / len(rows) * 100, 1) if rows else 100.0,
    }
