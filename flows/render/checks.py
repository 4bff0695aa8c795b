"""The front matter's checks, evaluated for one tenant: each fires (with its message, fix, owner role
and due date), stays quiet, or is "unknown" when a figure it needs is unavailable. Also what a template
sees of a check, and the technical reasons behind every figure an email calls "not available"."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flows.core.config import PortfolioConfig, TenantConfig
from flows.core.errors import RenderError, ReportError, TemplateLimitError
from flows.plan.definitions import ReportDefinition, error_line
from flows.plan.plan import MetricValues
from flows.templating.agenda import SEVERITIES
from flows.templating.formatters import plain_reason
from flows.templating.limits import render_within_limits
from sources.registry import Unavailable, is_available


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
    topic: str = ""
    # Where the check stands in its report's front matter: the report lists its checks in the order of
    # their business impact, and ``rank_checks`` ranks by it within a severity.
    rank: int = 0


# When a check's definition gives no ``due_in_days``: how soon a shortfall of each severity is due.
DUE_DAYS_BY_SEVERITY = {"critical": 7, "high": 14, "medium": 21, "low": 30, "info": 30}


def namespaced(values: dict[str, Any], declared: list[str]) -> dict[str, dict[str, Any]]:
    spaces: dict[str, dict[str, Any]] = defaultdict(dict)
    for name in declared:
        namespace, short = name.split(".", 1)
        spaces[namespace][short] = values[name]
    return dict(spaces)


def evaluate_checks(definition: ReportDefinition, tenant: TenantConfig, values: dict[str, Any],
                    sent_on: dt.date | None = None) -> list[CheckResult]:
    """Each check of the definition for one tenant: fired, unknown (a figure it needs is unavailable) or
    not listed. A fired check's due date counts from ``sent_on``, the day the report is sent."""
    results = []
    context = {"tenant": {"id": tenant.id, "name": tenant.name, "domains": list(tenant.domains)},
               **namespaced(values, definition.all_metrics)}
    for rank, check in enumerate(definition.checks):
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
                                       + (f" ({'; '.join(reasons)})" if reasons else ""), "unknown", detail,
                                       topic=check.spec.topic or "", rank=rank))
            continue
        try:
            fired = bool(check.condition(**context))
            message = render_within_limits(check.message, context) if fired else ""
        except TemplateLimitError as exc:
            line = error_line(exc, definition) or check.when_line
            raise exc.at(f"{definition.shown_path}:{line}: check '{check.spec.id}' for tenant '{tenant.id}'") from None
        except Exception as exc:
            line = error_line(exc, definition) or check.when_line
            raise RenderError(f"{definition.shown_path}:{line}: check '{check.spec.id}' for tenant '{tenant.id}': "
                              f"{describe_error(exc)}") from exc
        if fired:
            spec = check.spec
            message = " ".join(message.split())
            due_days = spec.due_in_days if spec.due_in_days is not None else DUE_DAYS_BY_SEVERITY[spec.severity]
            due = (sent_on + dt.timedelta(days=due_days)).isoformat() if sent_on else ""
            results.append(CheckResult(spec.id, spec.severity, tenant.id, tenant.name, message, "fired",
                                       fix=spec.fix or message, owner=spec.owner or definition.role, due=due,
                                       topic=spec.topic or "", rank=rank))
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


def check_view(result: CheckResult) -> dict[str, str]:
    """What templates see of a check: dataclasses.asdict deep-copies field by field, which was a
    sixth of a 100-entity report's render time; every field is a plain string."""
    return dict(vars(result))


def severity_order(result: CheckResult) -> tuple:
    return (SEVERITIES.index(result.severity), result.tenant, result.id)


def describe_error(error: BaseException) -> str:
    """An error raised inside a template, for the author: our own errors speak for themselves."""
    if isinstance(error, ReportError):
        return str(error)
    return f"{type(error).__name__}: {error}"
