"""Which reports a run renders and which metrics it gathers: ``plan_run`` turns the loaded definitions,
the config and the chosen roles and tenants into report instances (a role for the whole portfolio, or
one per tenant, with overrides and A/B variants) and the (tenant, source) gathers they need, each once."""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from flows.core.config import PortfolioConfig, TenantConfig
from flows.core.errors import ConfigurationError, Problem
from flows.core.period import Period
from flows.plan.definitions import ReportDefinition, group_by_role
from sources.catalogue import REGISTRY
from sources.registry import SourceContext, SourceRegistry

PORTFOLIO = "portfolio"
MetricValues = dict[str, dict[str, Any]]  # tenant id -> metric name -> value


@dataclass(frozen=True)
class ReportInstance:
    """One report's content: a role for the whole portfolio, or a role for one tenant.

    ``definition`` is the default report (or the tenant's override); ``variants`` are A/B variants,
    each rendered only if some recipient is assigned to it.
    """

    definition: ReportDefinition
    tenant_ids: tuple[str, ...]
    key: str  # "portfolio" or the tenant id
    variants: tuple[ReportDefinition, ...] = ()

    @property
    def role(self) -> str:
        return self.definition.role

    @property
    def label(self) -> str:
        return f"{self.definition.role}/{self.key}"

    @property
    def all_definitions(self) -> tuple[ReportDefinition, ...]:
        return (self.definition, *self.variants)


@dataclass
class RunPlan:
    period: Period
    definitions: list[ReportDefinition]
    instances: list[ReportInstance]
    # (tenant id, source name) -> metric names, each gathered exactly once per run.
    gathers: dict[tuple[str, str], list[str]]
    definition_problems: list[Problem] = field(default_factory=list)
    # (tenant id, source name) -> metrics a report compares with earlier periods, gathered again for the
    # prior period and a year before (sources that can look back only; see LOOKBACKS).
    lookbacks: dict[tuple[str, str], list[str]] = field(default_factory=dict)


# The earlier periods a compared metric is gathered for, and the key suffix its value is kept under in
# the tenant's values ("finance.cash_on_hand@previous").
LOOKBACKS = {"previous": Period.previous, "year_ago": Period.year_before}


def lookback_key(metric: str, lookback: str) -> str:
    return f"{metric}@{lookback}"


def select(names: Iterable[str] | None, available: list[str], what: str) -> list[str]:
    if not names:
        return list(available)
    chosen = []
    for name in names:
        if name not in available:
            hint = difflib.get_close_matches(name, available, n=1)
            suffix = f" (did you mean '{hint[0]}'?)" if hint else f" (available: {', '.join(available)})"
            raise ConfigurationError(f"unknown {what} '{name}'{suffix}")
        chosen.append(name)
    return chosen


def plan_run(config: PortfolioConfig, definitions: list[ReportDefinition], period: Period,
             roles: Iterable[str] | None = None, tenants: Iterable[str] | None = None,
             definition_problems: list[Problem] | None = None,
             registry: SourceRegistry = REGISTRY) -> RunPlan:
    """What a run does. A broken definition fails only its own role: a role whose default report did not
    load is still a known role (``--roles coo,ceo`` runs ceo and fails coo with coo.md's problems), and
    with ``roles`` chosen, problems of the other roles' files are not this run's failures."""
    by_role = group_by_role(definitions)
    all_problems = list(definition_problems or [])
    broken_roles = [p.role for p in all_problems if p.role and p.role not in by_role]
    chosen_roles = select(roles, list(dict.fromkeys([*by_role, *broken_roles])), "role")
    tenant_ids = [t.id for t in config.tenants]
    chosen_tenants = select(tenants, tenant_ids, "tenant")
    if roles:
        problems = [p for p in all_problems if p.role is None or p.role in chosen_roles]
    else:
        problems = all_problems
    chosen_roles = [role for role in chosen_roles if role in by_role]
    # A tenant whose override (reports/tenants/<tenant>/<role>.md) is broken gets no report of that role
    # rather than the default one in its place: the failure is the override's problem.
    broken_overrides = {(p.role, PurePath(p.path).parent.name) for p in all_problems
                        if p.role and PurePath(p.path).parent.parent.name == "tenants"}
    instances: list[ReportInstance] = []
    needed: dict[str, set[str]] = defaultdict(set)
    for role in chosen_roles:
        group = by_role[role]
        for tenant_id, override in group.overrides.items():
            if tenant_id not in tenant_ids:
                hint = difflib.get_close_matches(tenant_id, tenant_ids, n=1)
                problems.append(Problem(
                    override.shown_path, 1, None,
                    f"override for unknown tenant '{tenant_id}' (the name of its folder): no tenant '{tenant_id}' "
                    f"in {config.path}" + (f" (did you mean '{hint[0]}'?)" if hint else
                                           f" (configured: {', '.join(tenant_ids)})"), role))
        if group.default.scope == "portfolio":
            instances.append(ReportInstance(group.default, tuple(chosen_tenants), PORTFOLIO, tuple(group.variants)))
        else:
            for tenant_id in chosen_tenants:
                if (role, tenant_id) in broken_overrides:
                    continue
                override = group.overrides.get(tenant_id)
                instances.append(ReportInstance(override, (tenant_id,), tenant_id) if override
                                 else ReportInstance(group.default, (tenant_id,), tenant_id, tuple(group.variants)))
        for instance in instances:
            if instance.role == role:
                for tenant_id in instance.tenant_ids:
                    for definition in instance.all_definitions:
                        needed[tenant_id].update(definition.all_metrics)
                        needed[tenant_id].update(comparison_inputs(definition.compared, registry))
                        needed[tenant_id].update(data_through_metrics(definition.all_metrics, registry))
    gathers: dict[tuple[str, str], list[str]] = {}
    for tenant_id in chosen_tenants:
        tenant = config.tenant(tenant_id)
        wanted = set(needed[tenant_id])
        # A derived source (KPI coverage) reads other sources' metrics: they are gathered with the rest.
        for source_name in {registry.metrics[metric].source for metric in needed[tenant_id]}:
            if registry.is_derived(source_name):
                wanted.update(registry.derived_inputs(source_name, tenant.sources.get(source_name),
                                                      source_context(config, tenant, period)))
        by_source: dict[str, list[str]] = defaultdict(list)
        for metric in sorted(wanted):
            by_source[registry.metrics[metric].source].append(metric)
        # Derived sources last: they are computed from the values gathered before them.
        for source_name, metrics in sorted(by_source.items(), key=lambda item: registry.is_derived(item[0])):
            gathers[(tenant_id, source_name)] = metrics
    lookbacks: dict[tuple[str, str], set[str]] = defaultdict(set)
    for instance in instances:
        for definition in instance.all_definitions:
            for metric in comparison_inputs(definition.compared, registry, earlier=True):
                spec = registry.metrics.get(metric)
                if spec is None or not registry.sources[spec.source].looks_back:
                    continue
                for tenant_id in instance.tenant_ids:
                    lookbacks[(tenant_id, spec.source)].add(metric)
    return RunPlan(period, [by_role[r].default for r in chosen_roles], instances, gathers, problems,
                   {key: sorted(metrics) for key, metrics in lookbacks.items()})


def data_through_metrics(metrics: Iterable[str], registry: SourceRegistry = REGISTRY) -> list[str]:
    """How far the data reaches, for each source whose figures these metrics show (the ledger's books):
    gathered with them, so the report can say the date when it is before the period end."""
    found = []
    for metric in metrics:
        spec = registry.metrics.get(metric)
        through = registry.sources[spec.source].data_through if spec is not None else None
        if through is not None and through[0] not in found:
            found.append(through[0])
    return found


def comparison_inputs(compared: Iterable[str], registry: SourceRegistry = REGISTRY, earlier: bool = False) -> list[str]:
    """What comparing these metrics reads: each metric, its target, the two totals a portfolio ratio
    (runway: cash over outflow) divides, and the table its change is split into (its components).
    ``earlier``: what is read of the prior periods, where components that add up to the change itself
    (the period's cash movements) are not needed."""
    inputs: list[str] = []
    for metric in compared:
        spec = registry.metrics.get(metric)
        if spec is None:
            continue
        inputs.append(metric)
        if spec.target:
            inputs.append(spec.target)
        if spec.portfolio_ratio:
            inputs.extend(spec.portfolio_ratio[:2])
        if spec.components and not (earlier and spec.components.adds_up_to == "change"):
            inputs.append(spec.components.metric)
    return list(dict.fromkeys(inputs))


def source_context(config: PortfolioConfig, tenant: TenantConfig, period: Period) -> SourceContext:
    return SourceContext(
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        period_start=period.start,
        period_end=period.end,
        base_dir=config.base_dir,
        # Every source's settings, for sources that summarise the others (KPI coverage).
        tenant_settings={"domains": list(tenant.domains), "sources": dict(tenant.sources)},
    )


def report_key(instance: ReportInstance, variant: str = "") -> str:
    """``jada-cto``, ``portfolio-cfo``, ``portfolio-cfo-b`` for variant b."""
    return "-".join(part for part in (instance.key, instance.role, variant) if part)
