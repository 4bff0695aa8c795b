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
    unfinished_shard_outcomes,
)
from flows.plan.plan import MetricValues, ReportInstance, RunPlan

__all__ = ["TaskSteps", "ShardedSteps", "online_workers", "record_role_reports", "SHARD_DEPLOYMENT"]


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
# A shard no worker has taken by then is cancelled and counted as failed when no worker is online in its pool,
# so a run on a pool nobody serves (a local run with shards set, a stopped pool) ends instead of waiting for
# ever; behind busy workers it waits its turn. One a worker took but never started (the worker died in
# between) is marked Crashed and started again.
SHARD_START_SECONDS = float(os.environ.get("EXEC_REPORTS_SHARD_START_SECONDS", "600"))
# A running shard sends Prefect a heartbeat every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (30 in the shard
# deployment's job variables). One silent for this long (or three intervals, if longer) lost its process, worker
# or machine, with nothing left to report a crash: it is marked Crashed and started again on another worker.
SHARD_SILENCE_SECONDS = float(os.environ.get("EXEC_REPORTS_SHARD_SILENCE_SECONDS", "90"))
HEARTBEAT_CHECK_SECONDS = 10.0
HEARTBEAT_SETTING = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"


class ShardedSteps(TaskSteps):
    """Gathering as shard flow runs on the work pool: each gathers its tenants' figures and delivers their
    own reports, on whichever worker takes it, and hands the figures back through result storage; the
    portfolio reports are then rendered here as tasks (``RunJob.scope`` "portfolio"). A shard that fails,
    crashes or goes silent (no heartbeat for SHARD_SILENCE_SECONDS) is submitted again (SHARD_ATTEMPTS); one
    that never completes leaves its tenants' figures unavailable, so the portfolio reports follow
    ``on_missing_tenant``."""

    def __init__(self, count: int, parameters: dict[str, Any]) -> None:
        self.count, self.parameters = count, parameters
        self.runs: list[ShardRun] = []
        self.results: dict[int, ShardResult] = {}  # by shard number, for the shards that completed

    def gather(self, job: RunJob, plan: RunPlan, batches: list[list[str]]) -> GatherResult:
        planned = {tenant_id for tenant_id, _ in plan.gathers} | {
            tenant_id for instance in plan.instances for tenant_id in instance.tenant_ids}
        tenant_ids = [tenant.id for tenant in job.config.tenants if tenant.id in planned]
        self.runs = [ShardRun(number, tenants) for number, tenants in
                     enumerate(split_shards(tenant_ids, self.count), start=1)]
        self.results = {}
        with get_client(sync_client=True) as client:
            _ShardWatch(self, job, client).run()
        return [(run.tenants, self.results[run.shard].values if run.shard in self.results else RuntimeError(
            f"shard {run.shard} did not complete after {len(run.flow_runs)} attempt(s): {run.state}: {run.reason}"))
            for run in self.runs]

    def merge_into(self, result: RunResult) -> None:
        """The parent's result gains every shard's outcomes and summary, and a failure for each report of a
        shard that never completed (see merge_shard_summaries)."""
        shards = [self.results[run.shard] for run in self.runs if run.shard in self.results]
        unfinished = unfinished_shard_outcomes(self.runs, result.plan.instances)
        for shard in shards:
            result.outcomes.extend(shard.outcomes)
        result.outcomes.extend(unfinished)
        merge_shard_summaries(result.summary, shards, self.runs, unfinished)


class _ShardWatch:
    """Submits a sharded run's shards and watches them to their end: collects each completed shard's result,
    submits again one that failed, crashed, was never started or went silent, cancels one no worker took."""

    def __init__(self, steps: ShardedSteps, job: RunJob, client) -> None:
        self.steps, self.job, self.client, self.log = steps, job, client, get_run_logger()
        self.submitted: dict[int, float] = {}  # shard -> when its current attempt was submitted
        self.heartbeat_checked: dict[int, float] = {}
        # shard -> (the newest heartbeat event seen, when this process first saw it): silence is measured on
        # this process's clock, never by comparing another machine's timestamps with it.
        self.last_beat: dict[int, tuple[str | None, float]] = {}
        self.silence_limit = self._silence_limit()

    def run(self) -> None:
        pending = {run.shard: self.submit(run) for run in self.steps.runs}
        while pending:
            time.sleep(SHARD_POLL_SECONDS)
            for number, flow_run_id in list(pending.items()):
                run = self.steps.runs[number - 1]
                try:
                    state = self.client.read_flow_run(flow_run_id).state
                    if state is not None and not state.is_final():
                        state = self.stalled(run, flow_run_id, state) or state
                except Exception as exc:  # the API did not answer this time: judged again at the next poll
                    self.log.warning("shard %d: its state was not read (%s: %s)", number, type(exc).__name__, exc)
                    continue
                if state is None or not state.is_final():
                    continue
                del pending[number]
                try:
                    result = state.result(raise_on_failure=False) if state.is_completed() else None
                except Exception as exc:  # e.g. a result storage this process cannot reach
                    result = exc
                if isinstance(result, ShardResult):
                    run.state = state.name
                    self.steps.results[number] = result
                    continue
                # A shard whose result cannot be read did not complete for this run: its tenants' figures and
                # outcomes are unknown here.
                run.state = state.name if not state.is_completed() else "Completed without a readable result"
                run.reason = state.message or (f"its result could not be read: {result}"
                                               if isinstance(result, Exception) else "it returned no result")
                self.log.warning("shard %d ended %s: %s", number, run.state, run.reason)
                if len(run.flow_runs) < SHARD_ATTEMPTS and not state.is_cancelled():
                    pending[number] = self.submit(run)

    def submit(self, run: ShardRun) -> uuid.UUID:
        from prefect.deployments import run_deployment

        job = self.job
        flow_run = run_deployment(SHARD_DEPLOYMENT, timeout=0, as_subflow=True, parameters={
            **self.steps.parameters, "tenants": run.tenants, "shard": run.shard, "period": job.period.label,
            "run_folder": job.run_folder, "run_name": job.run_name, "generated_at": job.generated_at.isoformat()})
        run.flow_runs.append(str(flow_run.id))
        self.submitted[run.shard] = time.monotonic()
        self.last_beat.pop(run.shard, None)
        self.log.info("shard %d (%d tenants: %s .. %s): flow run %s, attempt %d", run.shard, len(run.tenants),
                      run.tenants[0], run.tenants[-1], flow_run.id, len(run.flow_runs))
        return flow_run.id

    def stalled(self, run: ShardRun, flow_run_id: uuid.UUID, state: State) -> State | None:
        """The final state a stalled shard was put in (Cancelled: no worker took it and none is online;
        Crashed: taken but never started, or silent while running), or None while it is not stalled or it
        ended meanwhile (the state is proposed, not forced: one that completed in between keeps its result)."""
        from prefect.client.schemas.responses import SetStateStatus
        from prefect.states import Cancelled, Crashed

        waited = time.monotonic() - self.submitted[run.shard]
        # Behind busy workers (each with a --limit) a shard waits its turn; on a pool nobody serves it is cancelled.
        if state.is_scheduled() and waited > SHARD_START_SECONDS and not online_workers(self.client, flow_run_id):
            final = Cancelled(message=f"no worker took it within {SHARD_START_SECONDS:g} s and none is online")
        elif state.is_pending() and waited > SHARD_START_SECONDS:
            final = Crashed(message=f"a worker took it but did not start it within {SHARD_START_SECONDS:g} s")
        elif state.is_running() and (silence := self.silence(run.shard, flow_run_id)) is not None:
            final = Crashed(message=f"no heartbeat for {silence:.0f} s: its process or worker is gone")
        else:
            return None
        answer = self.client.set_flow_run_state(flow_run_id, final, force=False)
        if answer.status != SetStateStatus.ACCEPT:
            self.log.info("shard %d: not marked %s (%s): it moved on meanwhile", run.shard, final.name,
                          answer.status.value)
            return None
        self.log.error("shard %d: %s", run.shard, final.message)
        return final

    def silence(self, shard: int, flow_run_id: uuid.UUID) -> float | None:
        """Seconds this process has seen no new heartbeat of a running shard (counted from when it first saw
        it running), when that is over the silence limit; else None. Asked of the events API every
        HEARTBEAT_CHECK_SECONDS."""
        now = time.monotonic()
        if self.silence_limit is None or now - self.heartbeat_checked.get(shard, 0.0) < HEARTBEAT_CHECK_SECONDS:
            return None
        from prefect.events.filters import EventFilter, EventNameFilter, EventOrder, EventResourceFilter

        self.heartbeat_checked[shard] = now
        page = self.client.read_events(EventFilter(
            event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]), order=EventOrder.DESC), limit=1)
        newest = str(page.events[0].id) if page.events else None
        seen, since = self.last_beat.get(shard, (None, now))
        if shard not in self.last_beat or newest != seen:
            self.last_beat[shard] = (newest, now)
            return None
        silence = now - since
        return silence if silence > self.silence_limit else None

    def _silence_limit(self) -> float | None:
        """How long a running shard may send no heartbeat: SHARD_SILENCE_SECONDS, or three of the shard
        deployment's heartbeat intervals if that is longer. None when its runs send none: a silent shard is
        then not judged, and one whose worker died is waited for until an operator cancels it."""
        try:
            deployment = self.client.read_deployment_by_name(SHARD_DEPLOYMENT)
            frequency = float(((deployment.job_variables or {}).get("env") or {}).get(HEARTBEAT_SETTING) or 0)
        except Exception as exc:
            self.log.warning("shard deployment %s not read (%s: %s)", SHARD_DEPLOYMENT, type(exc).__name__, exc)
            frequency = 0
        if frequency <= 0:
            self.log.warning("the %s deployment sets no %s: a shard whose worker dies is not detected; the run "
                             "waits for it until an operator cancels it", SHARD_DEPLOYMENT, HEARTBEAT_SETTING)
            return None
        return max(SHARD_SILENCE_SECONDS, 3 * frequency)


def online_workers(client, flow_run_id: uuid.UUID) -> int:
    """How many workers are online in a flow run's work pool (0 for a run outside a pool)."""
    from prefect.client.schemas.filters import WorkerFilter, WorkerFilterStatus

    pool = client.read_flow_run(flow_run_id).work_pool_name
    return len(client.read_workers_for_work_pool(
        pool, worker_filter=WorkerFilter(status=WorkerFilterStatus(any_=["ONLINE"])))) if pool else 0


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
