"""The pipeline as plain functions: plan -> gather -> render -> deliver -> summarise.

The Prefect flow (``flows.flow``) calls exactly these; ``run_plain`` strings them together without
Prefect for ``check``, ``preview`` and the benchmarks. Nothing here imports Prefect.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import logging
import random
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any

from flows.addresses import header_text
from flows.charts import ChartCollector
from flows.config import PortfolioConfig, TenantConfig
from flows.definitions import SEVERITIES, ReportDefinition, error_line, group_by_role, load_definitions
from flows.delivery.base import DeliveryBackend, Email, slug
from flows.delivery.feedback import SuppressionList, report_new_suppressions
from flows.delivery.records import DeliveryKey, RecordStore, RunLiveness, deliver_once
from flows.delivery.selection import Selection
from flows.errors import ConfigurationError, Problem, RenderError, ReportError, TemplateLimitError
from flows.period import Period
from flows.render import RenderedEmail, render_email, stage
from flows.templating import (
    agenda,
    agenda_items,
    days_after,
    plain_reason,
    render_budget,
    render_within_limits,
)
from sources.registry import REGISTRY, SourceContext, SourceRegistry, Unavailable, is_available

log = logging.getLogger("exec_reports")

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


@dataclass
class CheckResult:
    id: str
    severity: str
    tenant: str
    tenant_name: str
    message: str
    status: str  # "fired" | "unknown"
    # For an unknown check: which metrics were unavailable and why (ids, keys: for the run summary and
    # the log, not the email, which shows ``message``).
    detail: str = ""
    # For the agenda of a fired check: what to do, which role owns it, by when (ISO date).
    fix: str = ""
    owner: str = ""
    due: str = ""


# When a check's definition gives no ``due_in_days``: how soon a shortfall of each severity is due.
DUE_DAYS_BY_SEVERITY = {"critical": 7, "high": 14, "medium": 21, "low": 30, "info": 30}


@dataclass
class Outcome:
    report: str
    tenant: str
    recipients: list[str]
    status: str  # sent | failed | skipped | dry-run
    location: str = ""
    reason: str = ""
    subject: str = ""
    warnings: list[str] = field(default_factory=list)
    variant: str = ""


class ReportSkipped(Exception):
    """The definition's ``send_if`` is false for this instance: nothing needs attention."""


# ---- plan --------------------------------------------------------------------------------------------


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
    return RunPlan(period, [by_role[r].default for r in chosen_roles], instances, gathers, problems)


# ---- gather ------------------------------------------------------------------------------------------


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


def gather_source(config: PortfolioConfig, tenant_id: str, source_name: str, metrics: list[str], period: Period,
                  registry: SourceRegistry = REGISTRY) -> dict[str, Any]:
    """Gather one (tenant, source). Unexpected errors propagate so the caller may retry them."""
    tenant = config.tenant(tenant_id)
    return registry.gather(source_name, metrics, tenant.sources.get(source_name),
                           source_context(config, tenant, period))


def unavailable_after_error(source_name: str, metrics: list[str], error: BaseException) -> dict[str, Any]:
    reason = f"source '{source_name}' failed: {type(error).__name__}: {error}"
    return {name: Unavailable(name, reason) for name in metrics}


# I/O trouble may pass; a bug or a bad file will not fix itself on the second try.
TRANSIENT_ERRORS = (OSError, TimeoutError, ConnectionError)
RETRY_DELAYS_SECONDS = (1.0, 5.0)


def gather_with_retries(config: PortfolioConfig, tenant_id: str, source_name: str, metrics: list[str],
                        period: Period, registry: SourceRegistry = REGISTRY,
                        delays: tuple[float, ...] = RETRY_DELAYS_SECONDS, sleep=time.sleep) -> dict[str, Any]:
    """Gather one (tenant, source), retrying transient errors with jittered backoff. Never raises:
    whatever still fails comes back as Unavailable with the reason, so one source never stops the others."""
    for attempt in range(len(delays) + 1):
        try:
            return gather_source(config, tenant_id, source_name, metrics, period, registry)
        except TRANSIENT_ERRORS as exc:
            if attempt == len(delays):
                log.warning("tenant %s: source %s failed after %d attempts: %s", tenant_id, source_name,
                            attempt + 1, exc)
                return unavailable_after_error(source_name, metrics, exc)
            delay = delays[attempt] * random.uniform(0.5, 1.5)
            log.warning("tenant %s: source %s: %s; retrying in %.1f s", tenant_id, source_name, exc, delay)
            sleep(delay)
        except Exception as exc:
            log.warning("tenant %s: source %s failed: %s", tenant_id, source_name, exc)
            return unavailable_after_error(source_name, metrics, exc)
    raise AssertionError("unreachable")  # pragma: no cover


def gather_tenants(config: PortfolioConfig, plan: RunPlan, tenant_ids: Iterable[str],
                   registry: SourceRegistry = REGISTRY) -> MetricValues:
    """Every planned (tenant, source) of these tenants, each exactly once."""
    wanted = set(tenant_ids)
    values: MetricValues = defaultdict(dict)
    for (tenant_id, source_name), metrics in plan.gathers.items():
        if tenant_id not in wanted:
            continue
        if registry.is_derived(source_name):
            values[tenant_id].update(derive_source(config, tenant_id, source_name, metrics, plan.period,
                                                   values[tenant_id], registry))
        else:
            values[tenant_id].update(gather_with_retries(config, tenant_id, source_name, metrics, plan.period,
                                                         registry))
    return dict(values)


def derive_source(config: PortfolioConfig, tenant_id: str, source_name: str, metrics: list[str], period: Period,
                  gathered: dict[str, Any], registry: SourceRegistry = REGISTRY) -> dict[str, Any]:
    """A derived source's metrics from the tenant's values gathered so far (plan order puts it last). Never
    raises: a failure makes its metrics unavailable with the reason."""
    tenant = config.tenant(tenant_id)
    try:
        return registry.derive(source_name, metrics, tenant.sources.get(source_name), gathered,
                               source_context(config, tenant, period))
    except Exception as exc:
        log.warning("tenant %s: derived source %s failed: %s", tenant_id, source_name, exc)
        return unavailable_after_error(source_name, metrics, exc)


def gather_all(config: PortfolioConfig, plan: RunPlan, registry: SourceRegistry = REGISTRY) -> MetricValues:
    return gather_tenants(config, plan, {tenant_id for tenant_id, _ in plan.gathers}, registry)


def tenant_batches(tenant_ids: list[str], max_batches: int) -> list[list[str]]:
    """Split tenants into at most ``max_batches`` contiguous groups of near-equal size."""
    count = max(1, min(max_batches, len(tenant_ids)))
    size, extra = divmod(len(tenant_ids), count)
    batches, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        batches.append(tenant_ids[start:end])
        start = end
    return [batch for batch in batches if batch]


# ---- render ------------------------------------------------------------------------------------------


def _namespaced(values: dict[str, Any], declared: list[str]) -> dict[str, dict[str, Any]]:
    spaces: dict[str, dict[str, Any]] = defaultdict(dict)
    for name in declared:
        namespace, short = name.split(".", 1)
        spaces[namespace][short] = values[name]
    return dict(spaces)


def evaluate_checks(definition: ReportDefinition, tenant: TenantConfig, values: dict[str, Any],
                    period_end: dt.date | None = None) -> list[CheckResult]:
    results = []
    context = {"tenant": {"id": tenant.id, "name": tenant.name, "domains": list(tenant.domains)},
               **_namespaced(values, definition.all_metrics)}
    for check in definition.checks:
        missing = [m for m in check.metrics if not is_available(values.get(m))]
        if missing:
            # Plain words for the email; the metric ids and technical reasons are in the run
            # summary's warnings (unavailable_warnings) where the people who fix them look.
            reasons = sorted({plain_reason(values[m]) if isinstance(values.get(m), Unavailable) else ""
                              for m in missing} - {""})
            detail = "; ".join(f"{m}: {values[m].reason if isinstance(values.get(m), Unavailable) else 'not gathered'}"
                               for m in missing)
            results.append(CheckResult(check.spec.id, check.spec.severity, tenant.id, tenant.name,
                                       "could not be checked: a figure it needs is not available"
                                       + (f" ({'; '.join(reasons)})" if reasons else ""), "unknown", detail))
            continue
        try:
            fired = bool(check.condition(**context))
            message = render_within_limits(check.message, context) if fired else ""
        except TemplateLimitError:
            raise
        except Exception as exc:
            line = error_line(exc, definition) or check.when_line
            raise RenderError(f"{definition.shown_path}:{line}: check '{check.spec.id}' for tenant '{tenant.id}': "
                              f"{describe_error(exc)}") from exc
        if fired:
            spec = check.spec
            message = " ".join(message.split())
            due_days = spec.due_in_days if spec.due_in_days is not None else DUE_DAYS_BY_SEVERITY[spec.severity]
            due = (period_end + dt.timedelta(days=due_days)).isoformat() if period_end else ""
            results.append(CheckResult(spec.id, spec.severity, tenant.id, tenant.name, message, "fired",
                                       fix=spec.fix or message, owner=spec.owner or definition.role, due=due))
    return results


def unavailable_warnings(definition: ReportDefinition, tenant_ids: Iterable[str], values: MetricValues,
                         config: PortfolioConfig) -> list[str]:
    """The technical reason behind every figure the email calls "not available", for the run
    summary, the log and the operations alert (the email itself says it in plain words). One line per
    metric and reason, naming the tenants, so a 100-tenant portfolio gives a few lines, not hundreds."""
    by_reason: dict[tuple[str, str], list[str]] = defaultdict(list)
    for tenant_id in tenant_ids:
        for name in definition.all_metrics:
            value = values.get(tenant_id, {}).get(name)
            if isinstance(value, Unavailable):
                by_reason[(name, value.reason)].append(tenant_id)
    warnings = []
    for (name, reason), tenants in by_reason.items():
        shown = ", ".join(tenants[:5]) + (f" and {len(tenants) - 5} more" if len(tenants) > 5 else "")
        warnings.append(f"{name} unavailable for {shown}: {reason}")
    return warnings


# One critical check outranks any number of high ones in practice (a portfolio rarely has 10 highs on
# one entity), and so on down; info checks do not ask for attention.
ATTENTION_WEIGHTS = {"critical": 1000, "high": 100, "medium": 10, "low": 1, "info": 0}


def _check_view(result: CheckResult) -> dict[str, str]:
    """What templates see of a check: dataclasses.asdict deep-copies field by field, which was a
    sixth of a 100-entity report's render time; every field is a plain string."""
    return dict(vars(result))


def _severity_order(result: CheckResult) -> tuple:
    return (SEVERITIES.index(result.severity), result.tenant, result.id)


def build_report(instance: ReportInstance, values: MetricValues, config: PortfolioConfig, period: Period,
                 generated_at: dt.datetime | None = None, definition: ReportDefinition | None = None,
                 timings: dict[str, float] | None = None, render_skipped: bool = False,
                 ) -> tuple[RenderedEmail, list[CheckResult]]:
    """Render one report instance (or one of its variants), or raise RenderError saying which figure is
    missing and why, or ReportSkipped when its ``send_if`` is false.

    Within the config's ``limits``: a report whose checks, template and email take longer than
    ``render_seconds`` or grow past ``render_bytes`` raises RenderError naming the limit.

    ``render_skipped`` (check): render the template even when ``send_if`` is false, then raise
    ReportSkipped, so a template error behind a false ``send_if`` is found before other data makes it true."""
    definition = definition or instance.definition
    limits = config.limits
    try:
        with render_budget(limits.render_seconds, limits.render_bytes) as budget:
            rendered, checks = _build_report(instance, values, config, period, generated_at, definition, timings,
                                             render_skipped)
            budget.check_size(rendered.html_bytes, "the email's HTML")
            budget.check_time()  # Markdown and layout run outside the template's own checks
    except TemplateLimitError as exc:
        line = error_line(exc, definition)  # none when the limit hit Markdown or the layout, after the template
        raise TemplateLimitError(f"{definition.shown_path}{f':{line}' if line else ''}: {exc}") from None
    return rendered, checks


def _build_report(instance: ReportInstance, values: MetricValues, config: PortfolioConfig, period: Period,
                  generated_at: dt.datetime | None, definition: ReportDefinition,
                  timings: dict[str, float] | None, render_skipped: bool = False,
                  ) -> tuple[RenderedEmail, list[CheckResult]]:
    missing = missing_required(definition, instance.tenant_ids, values)
    left_out: list[dict[str, str]] = []
    included = list(instance.tenant_ids)
    if missing:
        leave_out = (definition.scope == "portfolio" and definition.front.on_missing_tenant == "leave_out"
                     and len(missing) < len(instance.tenant_ids))
        if not leave_out:
            raise RenderError("required metric unavailable: " + "; ".join(
                f"{name} for {tenant_id}: {value_reason(value)}"
                for tenant_id, unavailable in missing.items() for name, value in unavailable))
        included = [tenant_id for tenant_id in instance.tenant_ids if tenant_id not in missing]
        left_out = [left_out_tenant(config.tenant(tenant_id), unavailable) for tenant_id, unavailable in missing.items()]

    views = []
    all_checks: list[CheckResult] = []
    for tenant_id in included:
        tenant = config.tenant(tenant_id)
        tenant_values = values.get(tenant_id, {})
        checks = sorted(evaluate_checks(definition, tenant, tenant_values, period.end), key=_severity_order)
        all_checks.extend(checks)
        fired = [c for c in checks if c.status == "fired"]
        view = {"id": tenant.id, "name": tenant.name, "domains": list(tenant.domains),
                "checks": [_check_view(c) for c in fired],
                # Ranks entities for summary-first reports: top(tenants, 10, by="attention").
                "attention": sum(ATTENTION_WEIGHTS.get(c.severity, 0) for c in fired),
                "unknown_checks": [_check_view(c) for c in checks if c.status == "unknown"],
                **_namespaced(tenant_values, definition.all_metrics)}
        views.append(view)
    all_checks.sort(key=_severity_order)
    generated_at = generated_at or dt.datetime.now(dt.UTC)
    charts = ChartCollector()
    notes: list[str] = []

    def note(text: Any) -> str:
        """``{{ note("...") }}`` puts a sentence in the notes box under the title; prints nothing."""
        text = " ".join(str(text).split())
        if text and text not in notes:
            notes.append(text)
        return ""

    operator_details: list[str] = []

    def operator_note(text: Any) -> str:
        """``{{ operator_note("...") }}``: a technical detail (file:line, an id) for the run summary and the
        log, never the email; prints nothing."""
        text = " ".join(str(text).split())
        if text and text not in operator_details:
            operator_details.append(text)
        return ""

    def todos(items: Any, text: str = "{text}", priority: str = "medium", due_in_days: int = 30,
              owner: str | None = None) -> list[dict[str, Any]]:
        """``{{ agenda(t.checks, todos(t.handoffs.blockers, "Unblock: {text}", priority="high")) }}``: rows
        (dicts) as agenda items; ``text`` is filled from each row's fields."""
        return agenda_items(items, text, priority, days_after(period.end, due_in_days), owner or definition.role)

    context: dict[str, Any] = {
        "agenda": agenda,
        "todos": todos,
        "report": {"role": definition.role, "title": definition.front.title, "variant": definition.variant},
        "period": {"label": period.label, "kind": period.kind, "start": period.start, "end": period.end},
        "portfolio": {"name": config.portfolio.name},
        "generated_at": generated_at,
        "checks": [_check_view(c) for c in all_checks if c.status == "fired"],
        "unknown_checks": [_check_view(c) for c in all_checks if c.status == "unknown"],
        "chart": charts.chart,
        "note": note,
        "operator_note": operator_note,
        # Tenants left out of a portfolio report (required figures unavailable): id, name, reason (plain).
        "left_out_tenants": [{k: v for k, v in t.items() if k != "detail"} for t in left_out],
    }
    if definition.scope == "portfolio":
        context["tenants"] = views
    else:
        context["tenant"] = views[0]
        # Tenant-scope templates may also write finance.burn_rate without the tenant prefix.
        context.update({k: v for k, v in views[0].items() if isinstance(v, dict)})
    skipped: ReportSkipped | None = None
    if definition.send_if is not None:
        try:
            wanted = bool(definition.send_if(**context))
        except TemplateLimitError:
            raise
        except Exception as exc:
            raise RenderError(f"{definition.shown_path}:{definition.send_if_line}: send_if: "
                              f"{describe_error(exc)}") from exc
        if not wanted:
            skipped = ReportSkipped(f"send_if is false ({definition.front.send_if})")
            if not render_skipped:
                raise skipped
    try:
        with stage(timings, "template"):
            markdown = render_within_limits(definition.template, context)
            subject = header_text(render_within_limits(definition.subject, context))
    except TemplateLimitError:
        raise
    except Exception as exc:
        line = error_line(exc, definition)
        where = f"{definition.shown_path}:{line}" if line else definition.shown_path
        raise RenderError(f"{where}: template error: {describe_error(exc)}") from exc
    if left_out:  # first in the notes box under the title: the first thing the reader sees
        notes.insert(0, left_out_notice(left_out, len(views)))
    scope_name = config.portfolio.name if instance.key == PORTFOLIO else views[0]["name"]
    footer = (f"{definition.front.title} · {scope_name} · {period.label} · generated "
              f"{generated_at:%Y-%m-%d %H:%M} UTC by exec-reports")
    rendered = render_email(markdown, subject, title=definition.front.title, footer=footer,
                            preheader=f"{scope_name}, {period.label}", notes=notes, charts=charts.specs,
                            timings=timings)
    rendered.warnings.extend(unavailable_warnings(definition, instance.tenant_ids, values, config))
    rendered.warnings.extend(operator_details)
    rendered.tasks = structure_actions(rendered.tasks, instance, definition, views)
    if skipped is not None:
        raise skipped
    rendered.warnings.extend(f"left out {t['name']} ({t['id']}): {t['detail']}" for t in left_out)
    return rendered, all_checks


def describe_error(error: BaseException) -> str:
    """An error raised inside a template, for the author: our own errors speak for themselves."""
    if isinstance(error, ReportError):
        return str(error)
    return f"{type(error).__name__}: {error}"


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


_ACTION_SUFFIX = re.compile(
    r"^(?P<text>.*?)\s+—\s+(?P<priority>critical|high|medium|low)\s+priority"
    r"(?:,\s+due\s+(?P<due>\d{4}-\d{2}-\d{2}))?(?:,\s+owner\s+(?P<owner>[a-z][a-z0-9_-]*))?$")


def structure_actions(tasks: list[dict[str, str]], instance: ReportInstance, definition: ReportDefinition,
                      views: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Open task-list items of a rendered report as actions: text, owner role, tenant, priority, due.

    Priority, due date and owner come from the ``action()`` helper's suffix when present; the tenant
    is the report's tenant, or in a portfolio report the tenant whose name heads the section.
    """
    # Longest names first, so "Acme Labs" is not credited to "Acme".
    names = dict(sorted(((view["name"].lower(), view["id"]) for view in views), key=lambda item: -len(item[0])))
    actions = []
    for task in tasks:
        if task["status"] != "open":
            continue
        match = _ACTION_SUFFIX.match(task["text"])
        text = match["text"] if match else task["text"]
        if instance.key != PORTFOLIO:
            tenant = instance.key
        else:
            heading = task["heading"].lower()
            tenant = next((tid for name, tid in names.items() if heading == name or heading.startswith(name + " ")
                           or heading.startswith(name + ":")), PORTFOLIO)
        actions.append({
            "text": text,
            "owner": (match["owner"] if match and match["owner"] else definition.role),
            "tenant": tenant,
            "priority": match["priority"] if match else "medium",
            "due": (match["due"] if match and match["due"] else ""),
            "heading": task["heading"],
            "report": definition.role,
        })
    return actions


def recipients_of(instance: ReportInstance, config: PortfolioConfig) -> list[str]:
    definition = instance.definition
    tenant = None if instance.key == PORTFOLIO else config.tenant(instance.key)
    # A tenant's own officers come first for its tenant-scope reports, so a definition's shared list
    # can never send one business's figures to another's people.
    if tenant is not None and tenant.recipients.get(definition.role):
        recipients = list(tenant.recipients[definition.role])
    else:
        recipients = definition.front.recipients or config.recipients_for(definition.role, tenant)
    if not recipients:
        raise ConfigurationError(
            f"no recipients for role '{definition.role}': set recipients.{definition.role} in {config.path}, "
            f"'recipients' in {definition.shown_path}, or delivery.default_recipient")
    return recipients


def assign_variant(role: str, recipient: str, default: ReportDefinition,
                   variants: tuple[ReportDefinition, ...]) -> ReportDefinition:
    """The same recipient always gets the same variant of a role (stable across runs and machines)."""
    if not variants:
        return default
    bucket = int(hashlib.sha256(f"{role}:{recipient.strip().lower()}".encode()).hexdigest(), 16) % 100
    threshold = 0
    for variant in sorted(variants, key=lambda d: d.variant):
        threshold += variant.front.split or 0
        if bucket < threshold:
            return variant
    return default


def make_email(instance: ReportInstance, definition: ReportDefinition, rendered: RenderedEmail,
               recipient: str | tuple[str, ...], config: PortfolioConfig, period: Period) -> Email:
    """One message per recipient (nobody sees another recipient's address); a tuple when the config groups."""
    delivery = config.delivery
    # A portfolio report built for only some tenants is another message than the full one: its own
    # delivery key, so it can neither block nor be blocked by the scheduled full run.
    tenant_label = instance.key
    if instance.key == PORTFOLIO and set(instance.tenant_ids) != {t.id for t in config.tenants}:
        tenant_label = f"{PORTFOLIO}:{'+'.join(sorted(instance.tenant_ids))}"
    tags = {**delivery.ses.tags, "tenant": slug(tenant_label), "role": definition.role, "period": period.label}
    if definition.variant:
        tags["variant"] = definition.variant
    return Email(subject=rendered.subject, html=rendered.html, text=rendered.text,
                 from_address=delivery.from_address, to=(recipient,) if isinstance(recipient, str) else recipient,
                 role=definition.role, tenant=tenant_label, period=period.label, variant=definition.variant,
                 tags=tags, bcc=(delivery.bcc_address,) if delivery.bcc_address else (),
                 configuration_set=delivery.ses.configuration_set, images=tuple(rendered.images))


@dataclass
class ProducedReport:
    outcomes: list[Outcome]
    checks: list[CheckResult]
    rendered: dict[str, RenderedEmail]  # variant ("" for the default) -> rendered email


def produce_report(instance: ReportInstance, values: MetricValues, config: PortfolioConfig, period: Period,
                   backend: DeliveryBackend | None, *, dry_run: bool = False, records: RecordStore | None = None,
                   run: str = "", resend: bool = False, run_name: str = "", only: Selection | None = None,
                   run_is_over: RunLiveness | None = None, every_variant: bool = False,
                   generated_at: dt.datetime | None = None) -> ProducedReport:
    """Render and deliver one report instance. Never raises for report-level problems: returns outcomes.

    With ``records``, each message goes through ``deliver_once``: sent once per period unless ``resend``,
    claimed right before its provider call under this ``run``. With ``only``, messages it does not select
    are not delivered (nor listed). With ``every_variant`` (``check``, ``preview``), the default and every
    variant are rendered even when no recipient is assigned to them (listed as dry-run with no recipients).
    """
    role, key = instance.role, instance.key
    try:
        recipients = recipients_of(instance, config)
    except ReportError as exc:
        log.error("report %s failed: %s", instance.label, exc)
        return ProducedReport([Outcome(role, key, [], "failed", reason=str(exc))], [], {})
    by_definition: dict[str, tuple[ReportDefinition, list[str]]] = {}
    for recipient in recipients:
        chosen = assign_variant(role, recipient, instance.definition, instance.variants)
        by_definition.setdefault(chosen.variant, (chosen, []))[1].append(recipient)
    if every_variant:
        for definition in instance.all_definitions:
            by_definition.setdefault(definition.variant, (definition, []))

    produced = ProducedReport([], [], {})
    # Addresses that bounced for good or complained get nothing until an operator clears them. Looked up
    # per address (one read each, once per report), not by listing the whole suppression list for every
    # report: on S3 a listing costs one request per entry.
    suppressions = None if records is None or dry_run else SuppressionList(records)
    suppressed: dict[str, Any] = {}

    def suppression_of(recipient: Any) -> Any:
        address = _bare_address(recipient)
        if address not in suppressed:
            suppressed[address] = suppressions.entry(address) if suppressions is not None else None
        return suppressed[address]

    for variant, (definition, assigned) in sorted(by_definition.items()):
        try:
            rendered, checks = build_report(instance, values, config, period, generated_at, definition=definition,
                                            render_skipped=every_variant)
        except ReportSkipped as skipped:
            produced.outcomes.append(Outcome(role, key, assigned, "skipped", reason=str(skipped), variant=variant))
            continue
        except ReportError as exc:
            log.error("report %s failed: %s", instance.label, exc)
            produced.outcomes.append(Outcome(role, key, assigned, "failed", reason=str(exc), variant=variant))
            continue
        except Exception as exc:  # a bug in one report must not hide the others' outcomes
            log.exception("report %s failed unexpectedly", instance.label)
            produced.outcomes.append(Outcome(role, key, assigned, "failed", variant=variant,
                                             reason=f"unexpected error: {type(exc).__name__}: {exc}"))
            continue
        if not produced.checks:
            produced.checks = checks
        produced.rendered[variant] = rendered
        for warning in rendered.warnings:
            log.warning("report %s: %s", instance.label, warning)
        groups = [tuple(assigned)] if config.delivery.group_recipients else [(r,) for r in assigned]
        if not assigned:  # rendered for check/preview only: nobody is assigned this variant
            produced.outcomes.append(Outcome(role, key, [], "dry-run", subject=rendered.subject,
                                             warnings=rendered.warnings, variant=variant))
        for recipient in groups:
            blocked = [r for r in recipient if suppression_of(r) is not None]
            for address in blocked:
                produced.outcomes.append(Outcome(role, key, [address], "skipped", variant=variant,
                                                 reason=suppressed_reason(suppression_of(address))))
            recipient = tuple(r for r in recipient if r not in blocked)
            if not recipient:
                continue
            message = make_email(instance, definition, rendered, recipient, config, period)
            if only is not None and not only.selects(DeliveryKey.for_email(message)):
                continue
            if dry_run or backend is None:
                produced.outcomes.append(Outcome(role, key, list(recipient), "dry-run", subject=message.subject,
                                                 warnings=rendered.warnings, variant=variant))
                continue
            try:
                if records is not None:
                    result = deliver_once(backend, message, records, run=run, run_name=run_name, resend=resend,
                                          lease_seconds=config.delivery.records.lease_seconds,
                                          run_is_over=run_is_over)
                else:
                    result = backend.send(message)
                produced.outcomes.append(Outcome(role, key, list(result.recipients), result.status, result.location,
                                                 result.error, message.subject, rendered.warnings, variant))
            except Exception as exc:  # one recipient's failure never stops the others
                log.error("report %s to %s failed: %s", instance.label, ", ".join(recipient), exc)
                produced.outcomes.append(Outcome(role, key, list(recipient), "failed", subject=message.subject,
                                                 reason=f"{type(exc).__name__}: {exc}", variant=variant))
    return produced


def _bare_address(recipient: Any) -> str:
    return str(getattr(recipient, "address", recipient)).strip().lower()


def suppressed_reason(entry: Any) -> str:
    return (f"not sent: the address is suppressed since {entry.updated_at[:10]} ({entry.reason}); "
            f"`exec-reports suppression clear {entry.key.recipient}` lifts it")


# ---- summarise ----------------------------------------------------------------------------------------


def summarise(period: Period, outcomes: list[Outcome], checks: list[tuple[str, CheckResult]],
              definition_problems: list[Problem], run_folder: str = "",
              actions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    failed = [{"report": o.report, "tenant": o.tenant, "recipients": o.recipients, "reason": o.reason}
              for o in outcomes if o.status == "failed"]
    failed.extend({"report": p.path, "tenant": "", "recipients": [], "reason": str(p)} for p in definition_problems)
    return {
        "period": period.label,
        "run": run_folder,
        "sent": [{"report": o.report, "tenant": o.tenant, "recipients": o.recipients, "location": o.location,
                  "subject": o.subject, "variant": o.variant} for o in outcomes if o.status == "sent"],
        "dry_run": [{"report": o.report, "tenant": o.tenant, "recipients": o.recipients, "subject": o.subject,
                     "variant": o.variant} for o in outcomes if o.status == "dry-run"],
        "failed": failed,
        "skipped": [{"report": o.report, "tenant": o.tenant, "recipients": o.recipients, "reason": o.reason}
                    for o in outcomes if o.status == "skipped"],
        "checks": [{"report": role, **asdict(c)} for role, c in checks],
        "warnings": sorted({f"{o.report}/{o.tenant}: {w}" for o in outcomes for w in o.warnings}),
        "actions": list(actions or []),
    }


def run_folder_name(period: Period, started: dt.datetime | None = None) -> str:
    started = started or dt.datetime.now(dt.UTC)
    return f"{period.label}_{started:%Y%m%dT%H%M%SZ}"


def run_plain(config: PortfolioConfig, period: Period, *, roles=None, tenants=None, dry_run: bool = False,
              backend: DeliveryBackend | None = None, registry: SourceRegistry = REGISTRY,
              records: RecordStore | None = None, resend: bool = False, run: str = "",
              loaded: tuple[list[ReportDefinition], list[Problem]] | None = None,
              only: Selection | None = None, every_variant: bool = False,
              gathered: MetricValues | None = None, generated_at: dt.datetime | None = None,
              ) -> tuple[dict[str, Any], dict[str, RenderedEmail]]:
    """The whole pipeline without Prefect. Returns the summary and the rendered email per report key.

    Without ``records`` every message is sent; with them, only those not yet sent for the period.
    ``run`` names this run in the records (default: a fresh unique id, so two plain runs never share one).
    ``loaded``: definitions (and their problems) the caller already loaded, so they are not compiled twice.
    ``every_variant``: render the default and every variant even if no recipient gets them (check, preview).
    ``gathered``: filled with the metric values the run gathered (for check and preview to say which were
    unavailable)."""
    if backend is not None and not dry_run and hasattr(backend, "preflight"):
        backend.preflight()  # nothing is rendered or sent when the backend cannot send at all
    definitions, problems = loaded or load_definitions(config.reports_path, registry)
    if only is not None and not roles:
        roles = only.roles
    plan = plan_run(config, definitions, period, roles, tenants, problems, registry)
    values = gather_all(config, plan, registry)
    if gathered is not None:
        gathered.update(values)
    run_name = run_folder_name(period)
    run = run or f"{run_name}-{uuid.uuid4().hex[:8]}"
    outcomes: list[Outcome] = []
    checks: list[tuple[str, CheckResult]] = []
    actions: list[dict[str, str]] = []
    rendered_by_key: dict[str, RenderedEmail] = {}
    for instance in plan.instances:
        produced = produce_report(instance, values, config, period, backend, dry_run=dry_run,
                                  records=records, run=run, run_name=run_name, resend=resend, only=only,
                                  every_variant=every_variant, generated_at=generated_at)
        outcomes.extend(produced.outcomes)
        checks.extend((instance.role, c) for c in produced.checks)
        for variant, rendered in produced.rendered.items():
            rendered_by_key[report_key(instance, variant)] = rendered
            actions.extend(rendered.tasks)
    summary = summarise(period, outcomes, checks, plan.definition_problems, actions=actions)
    if records is not None and not dry_run:
        add_delivery_feedback(summary, report_new_suppressions(records, run or period.label))
    return summary, rendered_by_key


def add_delivery_feedback(summary: dict[str, Any], new_suppressions: list[dict[str, str]]) -> None:
    """Addresses SES reported as permanently bouncing or complaining since the last run: listed once."""
    summary["delivery_feedback"] = new_suppressions
    summary["warnings"].extend(f"{entry['address']} is now suppressed: {entry['why']} (SES message "
                               f"{entry['message_id']}, {entry['since']})" for entry in new_suppressions)


def metric_usage(definitions: Iterable[ReportDefinition], values: MetricValues) -> list[str]:
    """For authors: per report file, the metrics it reads and those that came back unavailable (which
    tenants, why), so a report that silently shows "not available" is visible before it is merged."""
    lines = []
    for definition in sorted(definitions, key=lambda d: d.shown_path):
        lines.append(f"{definition.shown_path}: metrics {', '.join(definition.all_metrics)}")
        by_reason: dict[tuple[str, str], list[str]] = defaultdict(list)
        for tenant_id, tenant_values in values.items():
            if definition.tenant_override and tenant_id != definition.tenant_override:
                continue
            for name in definition.all_metrics:
                value = tenant_values.get(name)
                if isinstance(value, Unavailable):
                    by_reason[(name, value.reason)].append(tenant_id)
        for (name, reason), tenants in sorted(by_reason.items()):
            lines.append(f"  unavailable: {name} for {', '.join(tenants)}: {reason}")
    return lines


def report_key(instance: ReportInstance, variant: str = "") -> str:
    """``jada-cto``, ``portfolio-cfo``, ``portfolio-cfo-b`` for variant b."""
    return "-".join(part for part in (instance.key, instance.role, variant) if part)
