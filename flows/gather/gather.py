"""Gathering a run's metrics: each planned (tenant, source) exactly once, transient I/O retried with
jittered backoff, derived sources computed last from what was gathered. Never raises for a source's
failure: its metrics come back ``Unavailable`` with the reason, so one source never stops the others."""

from __future__ import annotations

import logging
import random
import threading
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
    timeout = config.portfolio.source_timeout_seconds
    for tenant_id, steps in by_tenant.items():
        values[tenant_id] = gather_tenant_within(timeout, config, plan, tenant_id, steps, registry)
    return dict(values)


GatherSteps = list[tuple[str, list[str], bool]]  # (source, metrics, for the earlier periods)


def gather_tenant(config: PortfolioConfig, plan: RunPlan, tenant_id: str, steps: GatherSteps,
                  registry: SourceRegistry, into: dict[str, Any]) -> None:
    """One tenant's planned sources, in plan order, each one's metrics added to ``into`` as it finishes."""
    for source_name, metrics, earlier_periods in steps:
        if earlier_periods:
            for lookback, earlier in LOOKBACKS.items():
                gathered = gather_with_retries(config, tenant_id, source_name, metrics, earlier(plan.period), registry)
                into.update({lookback_key(name, lookback): value for name, value in gathered.items()})
        elif registry.is_derived(source_name):
            into.update(derive_source(config, tenant_id, source_name, metrics, plan.period, dict(into), registry))
        else:
            into.update(gather_with_retries(config, tenant_id, source_name, metrics, plan.period, registry))


class _Abandoned(Exception):
    """Raised in a tenant's gathering thread once the run stopped waiting for it."""


class _TenantValues(dict):
    """The values one tenant's gathering thread adds, until the run stops waiting: from then on every
    update raises, so late figures never mix with the ones the run went on with."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.abandoned = False

    def update(self, *args, **kwargs) -> None:
        with self.lock:
            if self.abandoned:
                raise _Abandoned()
            super().update(*args, **kwargs)

    def give_up(self) -> dict[str, Any]:
        with self.lock:
            self.abandoned = True
            return dict(self)


def gather_tenant_within(timeout: float | None, config: PortfolioConfig, plan: RunPlan, tenant_id: str,
                         steps: GatherSteps, registry: SourceRegistry = REGISTRY) -> dict[str, Any]:
    """One tenant's metrics, waiting at most ``timeout`` seconds for its sources (None: as long as they
    take). Past it the metrics gathered so far are kept, the rest are unavailable with the reason, and the
    run goes on: the sources go on in a thread of their own whose late results are dropped (Python cannot
    stop a thread that waits on a network call)."""
    if timeout is None:
        values: dict[str, Any] = {}
        gather_tenant(config, plan, tenant_id, steps, registry, values)
        return values
    collected, crashed = _TenantValues(), []

    def work() -> None:
        try:
            gather_tenant(config, plan, tenant_id, steps, registry, collected)
        except _Abandoned:
            log.warning("tenant %s: sources finished after the run stopped waiting; results dropped", tenant_id)
        except BaseException as exc:  # handed to the caller, as without a timeout
            crashed.append(exc)

    thread = threading.Thread(target=work, name=f"gather {tenant_id}", daemon=True)
    thread.start()
    thread.join(timeout)
    if not thread.is_alive():
        if crashed:
            raise crashed[0]
        return dict(collected)
    values = collected.give_up()
    reason = (f"tenant {tenant_id}'s sources did not finish within {timeout:g} s "
              "(portfolio.source_timeout_seconds); the run went on without what they had not gathered")
    log.error("%s", reason)
    for source_name, metrics, earlier_periods in steps:
        names = [lookback_key(name, lookback) for name in metrics for lookback in LOOKBACKS] if earlier_periods \
            else metrics
        values.update({name: Unavailable(name, f"source '{source_name}': {reason}")
                       for name in names if name not in values})
    return values


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
