"""Gathering a run's metrics: each planned (tenant, source) exactly once, transient I/O retried with
jittered backoff, derived sources computed last from what was gathered. Never raises for a source's
failure: its metrics come back ``Unavailable`` with the reason, so one source never stops the others."""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from flows.core.config import PortfolioConfig
from flows.core.period import Period
from flows.plan.plan import LOOKBACKS, MetricValues, RunPlan, lookback_key, source_context
from sources.catalogue import REGISTRY
from sources.registry import SourceRegistry, Unavailable

log = logging.getLogger("exec_reports")


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
    """Every planned (tenant, source) of these tenants, each exactly once; then the metrics reports compare
    with earlier periods, gathered for those periods and kept as ``metric@previous`` / ``metric@year_ago``."""
    wanted = set(tenant_ids)
    values: MetricValues = defaultdict(dict)
    # One tenant at a time, its earlier periods right after its own: a source that reads a file once for
    # all of them (the ledger) then finds it still read.
    by_tenant: dict[str, list[tuple[str, list[str], bool]]] = defaultdict(list)
    for (tenant_id, source_name), metrics in plan.gathers.items():
        if tenant_id in wanted:
            by_tenant[tenant_id].append((source_name, metrics, False))
    for (tenant_id, source_name), metrics in plan.lookbacks.items():
        if tenant_id in wanted:
            by_tenant[tenant_id].append((source_name, metrics, True))
    for tenant_id, steps in by_tenant.items():
        for source_name, metrics, earlier_periods in steps:
            if earlier_periods:
                for lookback, earlier in LOOKBACKS.items():
                    gathered = gather_with_retries(config, tenant_id, source_name, metrics, earlier(plan.period),
                                                   registry)
                    values[tenant_id].update({lookback_key(name, lookback): value for name, value in gathered.items()})
            elif registry.is_derived(source_name):
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
