"""Rendering one report instance: the checks evaluated per tenant, tenants without their required
figures left out (or the report failed), the template filled in the sandbox with its context (figures,
checks, the helpers that collect notes, charts and actions), then the email rendered. Raises RenderError
naming file:line, or ReportSkipped when ``send_if`` is false."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flows.core.addresses import header_text
from flows.core.config import PortfolioConfig
from flows.core.errors import RenderError, TemplateLimitError
from flows.core.period import Period
from flows.plan.definitions import ReportDefinition, error_line
from flows.plan.plan import PORTFOLIO, MetricValues, ReportInstance
from flows.render.actions import structure_actions
from flows.render.checks import (
    ATTENTION_WEIGHTS,
    CheckResult,
    check_view,
    describe_error,
    evaluate_checks,
    namespaced,
    severity_order,
    unavailable_warnings,
)
from flows.render.comparisons import FigureHelpers
from flows.render.coverage import coverage_notes
from flows.render.email import RenderedEmail, render_email, stage
from flows.render.left_out import left_out_notice, left_out_tenant, missing_required, value_reason
from flows.templating.agenda import ActionCollector, agenda_items
from flows.templating.charts import ChartCollector
from flows.templating.components import ComponentCollector
from flows.templating.limits import current_budget, render_budget, render_within_limits
from flows.templating.tables import names
from sources.catalogue import REGISTRY
from sources.registry import is_available


class ReportSkipped(Exception):
    """The definition's ``send_if`` is false for this instance: nothing needs attention."""


def build_report(instance: ReportInstance, values: MetricValues, config: PortfolioConfig, period: Period,
                 generated_at: dt.datetime | None = None, definition: ReportDefinition | None = None,
                 timings: dict[str, float] | None = None, render_skipped: bool = False, draw_charts: bool = True,
                 ) -> tuple[RenderedEmail, list[CheckResult]]:
    """Render one report instance (or one of its variants), or raise RenderError saying which figure is
    missing and why, or ReportSkipped when its ``send_if`` is false.

    Within the config's ``limits``: a report whose checks, template and email take longer than
    ``render_seconds``, grow past ``render_bytes`` or grow memory past ``render_memory_bytes`` raises
    RenderError naming the limit.

    ``render_skipped`` (check): render the template even when ``send_if`` is false, then raise
    ReportSkipped, so a template error behind a false ``send_if`` is found before other data makes it true.
    ``draw_charts``: draw the chart PNGs (every path that sends or previews); ``check`` skips them."""
    definition = definition or instance.definition
    limits = config.limits
    try:
        with render_budget(limits.render_seconds, limits.render_bytes, limits.render_memory_bytes) as budget:
            rendered, checks = _build_report(instance, values, config, period, generated_at, definition, timings,
                                             render_skipped, draw_charts)
            budget.check_size(rendered.html_bytes, "the email's HTML")
            budget.check_time()  # Markdown and layout run outside the template's own checks
    except TemplateLimitError as exc:
        if exc.located:
            raise
        line = error_line(exc, definition)  # none when the limit hit Markdown or the layout, after the template
        raise TemplateLimitError(f"{definition.shown_path}{f':{line}' if line else ''}: {exc}") from None
    return rendered, checks


def _build_report(instance: ReportInstance, values: MetricValues, config: PortfolioConfig, period: Period,
                  generated_at: dt.datetime | None, definition: ReportDefinition,
                  timings: dict[str, float] | None, render_skipped: bool = False, draw_charts: bool = True,
                  ) -> tuple[RenderedEmail, list[CheckResult]]:
    missing = missing_required(definition, instance.tenant_ids, values)
    left_out: list[dict[str, str]] = []
    included = list(instance.tenant_ids)
    if missing:
        leave_out = (definition.scope == "portfolio" and definition.front.on_missing_tenant == "leave_out"
                     and len(missing) < len(instance.tenant_ids))
        if not leave_out:
            # Grouped by tenant and cause, the cause first: one missing file is one clause, not one per metric.
            causes: dict[tuple[str, str], list[str]] = {}
            for tenant_id, unavailable in missing.items():
                for name, value in unavailable:
                    causes.setdefault((tenant_id, value_reason(value)), []).append(name)
            raise RenderError("required metric unavailable: " + "; ".join(
                f"{tenant_id}: {reason} ({', '.join(names)})" for (tenant_id, reason), names in causes.items()))
        included = [tenant_id for tenant_id in instance.tenant_ids if tenant_id not in missing]
        left_out = [left_out_tenant(config.tenant(tenant_id), unavailable) for tenant_id, unavailable in missing.items()]

    generated_at = generated_at or dt.datetime.now(dt.UTC)
    sent_on = generated_at.date()
    views = []
    all_checks: list[CheckResult] = []
    for tenant_id in included:
        tenant = config.tenant(tenant_id)
        tenant_values = values.get(tenant_id, {})
        checks = sorted(evaluate_checks(definition, tenant, tenant_values, sent_on), key=severity_order)
        all_checks.extend(checks)
        fired = [c for c in checks if c.status == "fired"]
        view = {"id": tenant.id, "name": tenant.name, "domains": list(tenant.domains),
                "checks": [check_view(c) for c in fired],
                # Ranks entities for summary-first reports: top(tenants, 10, by="attention").
                "attention": sum(ATTENTION_WEIGHTS.get(c.severity, 0) for c in fired),
                "unknown_checks": [check_view(c) for c in checks if c.status == "unknown"],
                **namespaced(tenant_values, definition.all_metrics)}
        views.append(view)
    current_budget().given(views)
    all_checks.sort(key=severity_order)
    charts = ChartCollector()
    notes: list[str] = []

    def note(text: Any) -> str:
        """``{{ note("...") }}`` puts a sentence in the "About these figures" box after the brief; prints nothing."""
        text = " ".join(str(text).split())
        if text and text not in notes:
            notes.append(text)
        return ""

    operator_details: list[str] = []

    def operator_note(text: Any) -> str:
        """``{{ operator_note("...") }}``: a technical detail (file:line, an id) for the run summary and the
        log, never the email; prints nothing. A list gives one detail per item (lists inside it too)."""
        if isinstance(text, list | tuple):  # a list of details, or a list of each tenant's list
            for item in text:
                if is_available(item):
                    operator_note(item)
            return ""
        text = " ".join(str(text).split())
        if text and text not in operator_details:
            operator_details.append(text)
        return ""

    def todos(items: Any, text: str = "{text}", priority: str = "medium", due_in_days: int = 30,
              owner: str | None = None, tenant: Any = None) -> list[dict[str, Any]]:
        """``{{ agenda(t.checks, todos(t.handoffs.blockers, "Unblock: {text}", priority="high", tenant=t.id)) }}``:
        rows (dicts) as agenda items; ``text`` is filled from each row's fields."""
        return agenda_items(items, text, priority, due_in_days, owner or definition.role, sent_on, tenant)

    actions = ActionCollector(portfolio=definition.scope == "portfolio")
    components = ComponentCollector()
    figures = FigureHelpers(REGISTRY.metrics, values, [(view["id"], view["name"]) for view in views], period,
                            definition.scope == "portfolio", components)

    context: dict[str, Any] = {
        "agenda": actions.agenda,
        "action": actions.action,
        "todos": todos,
        "report": {"role": definition.role, "title": definition.front.title, "variant": definition.variant},
        "period": {"label": period.label, "title": period.title, "kind": period.kind, "start": period.start,
                   "end": period.end},
        "portfolio": {"name": config.portfolio.name},
        "generated_at": generated_at,
        "sent_on": sent_on,  # the day the report is sent: due dates and plans count from it
        "checks": [check_view(c) for c in all_checks if c.status == "fired"],
        "unknown_checks": [check_view(c) for c in all_checks if c.status == "unknown"],
        "chart": charts.chart,
        "compare": figures.compare,
        "kpi_strip": figures.kpi_strip,
        "what_changed": figures.what_changed,
        "decisions": actions.decisions,
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
        except TemplateLimitError as exc:
            raise exc.at(f"{definition.shown_path}:{definition.send_if_line}: send_if") from None
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
    # After the report's own notes: how far the data reaches where it stops before the period end.
    notes.extend(note for note in coverage_notes(definition, views, values, period) if note not in notes)
    unchecked = [check.tenant_name for check in all_checks if check.status == "unknown"]
    if unchecked:  # a check that could not be evaluated is said once, below the brief, in every report
        notes.append(f"Not checked because a figure they need is not available: {names(list(dict.fromkeys(unchecked)))}.")
    if left_out:  # first in the notes box: what the portfolio figures leave out
        notes.insert(0, left_out_notice(left_out, len(views)))
    scope_name = config.portfolio.name if instance.key == PORTFOLIO else views[0]["name"]
    footer = (f"{definition.front.title} · {scope_name} · {period.title} ({period.label}) · generated "
              f"{generated_at:%Y-%m-%d %H:%M} UTC by exec-reports")
    rendered = render_email(markdown, subject, title=definition.front.title, footer=footer,
                            preheader=figures.headline or f"{scope_name}, {period.title}", notes=notes, charts=charts.specs,
                            timings=timings, draw_charts=draw_charts, components=components.components)
    rendered.warnings.extend(unavailable_warnings(definition, instance.tenant_ids, values, config))
    rendered.warnings.extend(operator_details)
    rendered.actions = structure_actions(actions.actions, rendered.action_headings, instance, definition)
    if skipped is not None:
        raise skipped
    rendered.warnings.extend(f"left out {t['name']} ({t['id']}): {t['detail']}" for t in left_out)
    return rendered, all_checks
