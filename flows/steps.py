"""The run's heavy steps as Prefect tasks (``TaskSteps``: a few gather tasks over batches of tenants, one
render-and-deliver task per role, the agenda hand-off) and, for a sharded run, its shards as flow runs on the
work pool (``ShardedSteps``). ``flows.flow`` passes them to the orchestrator; the plain path passes
``InProcessSteps`` instead."""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import MarkdownArtifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.states import Failed, State
from prefect.utilities.annotations import quote

from flows.core.config import PortfolioConfig
from flows.core.errors import ReportsFailed
from flows.core.period import Period
from flows.delivery.message import slug
from flows.delivery.tasks import HandOff
from flows.gather.gather import gather_tenants
from flows.orchestrator.produce import ProducedReport
from flows.orchestrator.run import (
    Delivery,
    GatherResult,
    InProcessSteps,
    ProduceResult,
    RunJob,
    RunResult,
    produce_role,
)
from flows.orchestrator.run_page import ChartInliner, report_sections, short_reason
from flows.orchestrator.shards import (
    SHARD_ATTEMPTS,
    ShardResult,
    ShardRun,
    merge_shard_summaries,
    split_shards,
)
from flows.plan.plan import MetricValues, ReportInstance, RunPlan

__all__ = ["TaskSteps", "ShardedSteps", "record_role_reports", "SHARD_DEPLOYMENT"]


# persist_result=False on every task, said explicitly: only the flow's result (the run summary) is kept;
# a task's result (every tenant's metrics, the outcomes) is read once by the flow and never again
# (NO_CACHE), so it must never be written to result storage.
@task(name="gather-metrics", task_run_name="gather metrics: {label}", cache_policy=NO_CACHE, persist_result=False)
def gather_metrics(config: PortfolioConfig, plan: RunPlan, tenant_ids: list[str], label: str) -> MetricValues:
    return gather_tenants(config, plan, tenant_ids)


@task(name="produce-reports", task_run_name="render and deliver {role}", cache_policy=NO_CACHE, persist_result=False)
def produce_reports(role: str, instances: list[ReportInstance], values: MetricValues, job: RunJob,
                    delivery: Delivery) -> list[ProducedReport] | State:
    """Every report of one role. A report that failed fails this task (its reason in the task's state
    message), after the others went out; the flow reads every outcome from the Failed state's data."""
    results, sections, inline_charts = [], [], ChartInliner()
    for instance, produced in zip(instances, produce_role(job, delivery, instances, values), strict=True):
        sections.extend(report_sections(instance, produced, job.period, inline_charts))
        # The flow needs outcomes, checks and agenda items back, not the rendered messages (HTML, charts):
        # dropping them here keeps one message at a time in memory instead of every message of the run.
        results.append(produced.without_messages())
    # Artifacts are history, not delivery: failing to record one is logged and never turns a delivered
    # report into a failure.
    try:
        record_role_reports(role, sections, job.period)
    except Exception as error:
        logging.getLogger("exec_reports").error("report artifact for %s not recorded: %s: %s", role,
                                                type(error).__name__, error)
    failed = [outcome for report in results for outcome in report.outcomes if outcome.status == "failed"]
    if failed:
        message = f"{len(failed)} of {role}'s message(s) failed: " + "; ".join(
            f"{o.report}/{o.tenant}: {short_reason(o.reason)}" for o in failed[:3])
        return Failed(message=message, data=ReportsFailed(message, results))
    return results


@task(name="hand-off-actions", task_run_name="hand off agenda items", cache_policy=NO_CACHE, persist_result=False)
def hand_off_agenda(actions: list[dict[str, str]], job: RunJob, delivery: Delivery) -> HandOff:
    return InProcessSteps().hand_off(job, delivery, actions)


class TaskSteps:
    """The orchestrator's heavy steps as Prefect tasks. quote(): large arguments (metric values, plans,
    config) pass through untouched; otherwise Prefect walks every element looking for futures, which
    costs seconds at a hundred tenants."""

    def gather(self, job: RunJob, plan: RunPlan, batches: list[list[str]]) -> GatherResult:
        futures = [gather_metrics.submit(quote(job.config), quote(plan), batch, batch[0] if len(batch) == 1 else
                                         f"{batch[0]} .. {batch[-1]} ({len(batch)} tenants)") for batch in batches]
        return [(batch, _result_or_error(future)) for batch, future in zip(batches, futures, strict=True)]

    def produce(self, job: RunJob, delivery: Delivery, by_role: dict[str, list[ReportInstance]],
                values: MetricValues) -> ProduceResult:
        # Rendering is CPU-bound Python under one GIL. Delivering through SES or SMTP mostly waits on the
        # provider, so roles overlap there; with the local outbox (or a dry run) nothing waits, and parallel
        # roles only contend for the GIL: one after another costs ~13% less CPU at 100 tenants (bench/).
        overlap_roles = not job.dry_run and delivery.backend is not None and delivery.backend.name != "outbox"
        futures = {}
        for role, instances in by_role.items():
            futures[role] = produce_reports.submit(role, quote(instances), quote(values), quote(job), quote(delivery))
            if not overlap_roles:
                futures[role].wait()
        return {role: _result_or_error(future) for role, future in futures.items()}

    def hand_off(self, job: RunJob, delivery: Delivery, actions: list[dict[str, str]]) -> HandOff | BaseException:
        return _result_or_error(hand_off_agenda.submit(quote(actions), quote(job), quote(delivery)))


# The deployment a sharded run starts its shards from (prefect.yaml); another name through the environment.
SHARD_DEPLOYMENT = os.environ.get("EXEC_REPORTS_SHARD_DEPLOYMENT", "send-exec-reports-shard/shard")
SHARD_POLL_SECONDS = 2.0
# A shard no worker has taken by then is cancelled and counted as failed, so a run without a worker on the
# pool (a local run with shards set, a stopped pool) ends instead of waiting for ever.
SHARD_START_SECONDS = float(os.environ.get("EXEC_REPORTS_SHARD_START_SECONDS", "600"))


class ShardedSteps(TaskSteps):
    """Gathering as shard flow runs on the work pool: each gathers its tenants' figures and delivers their
    own reports, on whichever worker takes it, and hands the figures back through result storage; the
    portfolio reports are then rendered here as tasks (``RunJob.scope`` "portfolio"). A shard that fails or
    crashes is submitted again (SHARD_ATTEMPTS); one that never completes leaves its tenants' figures
    unavailable, so the portfolio reports follow ``on_missing_tenant``."""

    def __init__(self, count: int, parameters: dict[str, Any]) -> None:
        self.count, self.parameters = count, parameters
        self.runs: list[ShardRun] = []
        self.results: dict[int, ShardResult] = {}  # by shard number, for the shards that completed

    def gather(self, job: RunJob, plan: RunPlan, batches: list[list[str]]) -> GatherResult:
        from prefect.deployments import run_deployment

        planned = {tenant_id for tenant_id, _ in plan.gathers} | {
            tenant_id for instance in plan.instances for tenant_id in instance.tenant_ids}
        tenant_ids = [tenant.id for tenant in job.config.tenants if tenant.id in planned]
        self.runs = [ShardRun(number, tenants) for number, tenants in
                     enumerate(split_shards(tenant_ids, self.count), start=1)]
        log = get_run_logger()

        submitted: dict[int, float] = {}

        def submit(run: ShardRun) -> uuid.UUID:
            flow_run = run_deployment(SHARD_DEPLOYMENT, timeout=0, as_subflow=True, parameters={
                **self.parameters, "tenants": run.tenants, "shard": run.shard, "period": job.period.label,
                "run_folder": job.run_folder, "run_name": job.run_name, "generated_at": job.generated_at.isoformat()})
            run.flow_runs.append(str(flow_run.id))
            submitted[run.shard] = time.monotonic()
            log.info("shard %d (%d tenants: %s .. %s): flow run %s, attempt %d", run.shard, len(run.tenants),
                     run.tenants[0], run.tenants[-1], flow_run.id, len(run.flow_runs))
            return flow_run.id

        self.results = {}
        pending = {run.shard: submit(run) for run in self.runs}
        with get_client(sync_client=True) as client:
            while pending:
                time.sleep(SHARD_POLL_SECONDS)
                for number, flow_run_id in list(pending.items()):
                    state = client.read_flow_run(flow_run_id).state
                    run = self.runs[number - 1]
                    if (state is None or state.is_scheduled() or state.is_pending()) and \
                            time.monotonic() - submitted[number] > SHARD_START_SECONDS:
                        from prefect.states import Cancelled

                        run.state, run.reason = "Cancelled", f"no worker took it within {SHARD_START_SECONDS:g} s"
                        client.set_flow_run_state(flow_run_id, Cancelled(message=run.reason), force=True)
                        log.error("shard %d: %s", number, run.reason)
                        del pending[number]
                        continue
                    if state is None or not state.is_final():
                        continue
                    run.state = state.name
                    try:
                        result = state.result(raise_on_failure=False) if state.is_completed() else None
                    except Exception as exc:  # e.g. a result storage this process cannot reach
                        result = exc
                    if isinstance(result, ShardResult):
                        self.results[number] = result
                        del pending[number]
                        continue
                    run.reason = state.message or (f"its result could not be read: {result}"
                                                   if isinstance(result, Exception) else "it returned no result")
                    log.warning("shard %d ended %s: %s", number, state.name, run.reason)
                    if len(run.flow_runs) < SHARD_ATTEMPTS:
                        pending[number] = submit(run)
                    else:
                        del pending[number]
        return [(run.tenants, self.results[run.shard].values if run.shard in self.results else RuntimeError(
            f"shard {run.shard} did not complete after {len(run.flow_runs)} attempt(s): {run.state}: {run.reason}"))
            for run in self.runs]

    def merge_into(self, result: RunResult) -> None:
        """The parent's result gains every shard's outcomes and summary (see merge_shard_summaries)."""
        shards = [self.results[run.shard] for run in self.runs if run.shard in self.results]
        for shard in shards:
            result.outcomes.extend(shard.outcomes)
        merge_shard_summaries(result.summary, shards, self.runs)


def _result_or_error(future) -> Any:
    """A task's result, or the exception that crashed it (the orchestrator decides what that means)."""
    future.wait()
    if future.state.is_completed():
        return future.result()
    error = future.state.result(raise_on_failure=False)
    if isinstance(error, ReportsFailed):  # the task finished and failed some reports: its outcomes count
        return error.results
    return error if isinstance(error, BaseException) else RuntimeError(str(error))


def record_role_reports(role: str, sections: list[str], period: Period) -> None:
    """One Markdown artifact per role and run (key ``reports-<role>``) holding all its reports: one API
    call where one artifact per report cost one per message (205 at 100 tenants), which the Prefect
    server answers with the same CPUs the run uses (bench/results.md)."""
    if sections:
        heading = f"# {role}: {len(sections)} report(s), {period.label}\n"
        MarkdownArtifact(key=slug(f"reports-{role}"), markdown="\n---\n\n".join([heading, *sections]),
                         description=f"The {len(sections)} {role} report(s) this run rendered ({period.label})"
                         ).create()
