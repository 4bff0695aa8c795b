"""The one orchestrator: plan -> gather -> render and deliver -> summarise -> hand off the agenda.

``run_reports`` is the run. How its two heavy steps execute is the caller's: ``InProcessSteps`` calls
them in this process, one after another (``check``, ``preview``, the benchmarks, most tests); the Prefect
flow (``flows.flow``) passes steps that submit them as tasks. Either way the plan, the handling of a step
that crashed, the summary and the hand-off are this module's, so the flow and the plain path cannot
drift apart. Nothing here imports Prefect.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flows.core.config import PortfolioConfig
from flows.core.errors import Problem
from flows.core.period import Period
from flows.delivery import get_backend
from flows.delivery.feedback import report_new_suppressions
from flows.delivery.message import DeliveryBackend
from flows.delivery.records import RecordStore, RunLiveness, open_record_store
from flows.delivery.tasks import HandOff, hand_off_actions
from flows.gather.gather import gather_tenants, tenant_batches, unavailable_after_error
from flows.orchestrator.produce import PreparedReport, ProducedReport, deliver_report, prepare_report
from flows.orchestrator.summary import Outcome, add_delivery_feedback, run_folder_name, summarise
from flows.plan.definitions import ReportDefinition, load_definitions
from flows.plan.plan import PORTFOLIO, MetricValues, ReportInstance, RunPlan, plan_run, report_key
from flows.plan.selection import Selection
from flows.render.charts import drawing_in_background
from flows.render.checks import CheckResult
from flows.render.email import RenderedEmail

log = logging.getLogger("exec_reports")


RUN_SCOPES = ("all", "tenant", "portfolio")


def in_scope(instance: ReportInstance, scope: str) -> bool:
    """Whether a run of this scope renders this report (see ``RunJob.scope``)."""
    return scope == "all" or (instance.key == PORTFOLIO) == (scope == "portfolio")


@dataclass
class RunJob:
    """One run, resolved once: the config and period, what to render and how to deliver it.

    ``run_id`` names the run in delivery claims (unique: a flow run id, or the folder plus a random
    suffix); ``run_folder`` is the outbox folder and the readable name in records; ``run_name`` is what
    the run's notices call it (the flow run's readable name)."""

    config: PortfolioConfig
    period: Period
    roles: list[str] | None = None
    tenants: list[str] | None = None
    dry_run: bool = False
    resend: bool = False
    only: Selection | None = None
    # check and preview: render the default report and every variant even if no recipient gets them.
    every_variant: bool = False
    draw_charts: bool = True
    # The rendered messages in the run's result (check, preview, tests); off, only outcomes and checks are
    # kept once a report is delivered, as in the flow (memory stays flat at a thousand tenants).
    keep_messages: bool = True
    generated_at: dt.datetime | None = None
    run_folder: str = ""
    run_id: str = ""
    run_name: str = ""
    # Which reports this run renders and delivers: "all"; "tenant", a shard of a sharded run (its tenants'
    # own reports, while it gathers every figure they need, portfolio ones included); "portfolio", the
    # parent of a sharded run (the portfolio reports, from the figures its shards gathered).
    scope: str = "all"

    def __post_init__(self) -> None:
        if self.scope not in RUN_SCOPES:
            raise ValueError(f"RunJob.scope must be one of {', '.join(RUN_SCOPES)}, got {self.scope!r}")
        self.run_folder = self.run_folder or run_folder_name(self.period)
        self.run_id = self.run_id or f"{self.run_folder}-{uuid.uuid4().hex[:8]}"
        self.run_name = self.run_name or self.run_folder
        if self.only is not None and not self.roles:
            self.roles = self.only.roles
        # One send time for every report of the run: due dates are counted from it, so an action has
        # the same due date in every brief that lists it.
        self.generated_at = self.generated_at or dt.datetime.now(dt.UTC)


@dataclass
class Delivery:
    """Where a run's messages go: the backend (None: render only), the records that make each message
    go out once (None: send without records), and how to tell whether another run is over."""

    backend: DeliveryBackend | None = None
    records: RecordStore | None = None
    run_is_over: RunLiveness | None = None

    @classmethod
    def open(cls, job: RunJob, run_is_over: RunLiveness | None = None) -> Delivery:
        """The config's backend for this run, and its record store unless the run is a dry run."""
        backend = get_backend(job.config, job.run_folder)
        return cls(backend, None if job.dry_run else open_record_store(job.config), run_is_over)


# A step that crashed as a whole (a Prefect task that died) comes back as the exception instead.
GatherResult = list[tuple[list[str], MetricValues | BaseException]]
ProduceResult = Mapping[str, list[ProducedReport] | BaseException]


class RunSteps(Protocol):
    """How the heavy steps execute: in this process, or as Prefect tasks."""

    def gather(self, job: RunJob, plan: RunPlan, batches: list[list[str]]) -> GatherResult: ...

    def produce(self, job: RunJob, delivery: Delivery, by_role: dict[str, list[ReportInstance]],
                values: MetricValues) -> ProduceResult: ...

    def hand_off(self, job: RunJob, delivery: Delivery, actions: list[dict[str, str]]) -> HandOff | BaseException: ...


class InProcessSteps:
    """Every step called directly, one after another, in this process."""

    def gather(self, job: RunJob, plan: RunPlan, batches: list[list[str]]) -> GatherResult:
        return [(batch, gather_tenants(job.config, plan, batch)) for batch in batches]

    def produce(self, job: RunJob, delivery: Delivery, by_role: dict[str, list[ReportInstance]],
                values: MetricValues) -> ProduceResult:
        return {role: [report if job.keep_messages else report.without_messages()
                       for report in produce_role(job, delivery, instances, values)]
                for role, instances in by_role.items()}

    def hand_off(self, job: RunJob, delivery: Delivery, actions: list[dict[str, str]]) -> HandOff:
        return hand_off_actions(actions, job.period.label, job.config, delivery.records, run=job.run_folder,
                                resend=job.resend)


def produce_instance(job: RunJob, delivery: Delivery, instance: ReportInstance, values: MetricValues) -> ProducedReport:
    """Render and deliver one report instance as this job says (the produce step's unit of work)."""
    return _deliver(job, delivery, _prepare(job, instance, values))


def _prepare(job: RunJob, instance: ReportInstance, values: MetricValues) -> PreparedReport:
    return prepare_report(instance, values, job.config, job.period, every_variant=job.every_variant,
                          generated_at=job.generated_at, draw_charts=job.draw_charts)


def _deliver(job: RunJob, delivery: Delivery, prepared: PreparedReport) -> ProducedReport:
    return deliver_report(prepared, job.config, job.period, delivery.backend, dry_run=job.dry_run,
                          records=delivery.records, run=job.run_id, resend=job.resend, run_name=job.run_folder,
                          only=job.only, run_is_over=delivery.run_is_over)


# With at least this many reports in a role, charts are drawn by worker processes while the next reports
# render (a few charts are not worth starting a pool for), and rendering runs RENDER_AHEAD reports ahead of
# delivery so a report's charts are drawn by the time its messages are built.
BACKGROUND_CHARTS_FROM = 8
RENDER_AHEAD = 8


def produce_role(job: RunJob, delivery: Delivery, instances: list[ReportInstance],
                 values: MetricValues) -> Iterator[ProducedReport]:
    """Every report of one role, rendered and delivered in order, one ProducedReport each."""
    if not job.draw_charts or len(instances) < BACKGROUND_CHARTS_FROM:
        for instance in instances:
            yield produce_instance(job, delivery, instance, values)
        return
    with drawing_in_background():
        pending: deque[PreparedReport] = deque()
        for instance in instances:
            pending.append(_prepare(job, instance, values))
            if len(pending) > RENDER_AHEAD:
                yield _deliver(job, delivery, pending.popleft())
        while pending:
            yield _deliver(job, delivery, pending.popleft())


@dataclass
class RunResult:
    summary: dict[str, Any]
    plan: RunPlan
    outcomes: list[Outcome]
    # Report key (``jada-cto``, ``portfolio-cfo-b``) -> its rendered email, as the produce step returned it.
    rendered: dict[str, RenderedEmail] = field(default_factory=dict)


# Gathering runs over a few batches of tenants, not one step per (tenant, source): at 100 tenants
# that is 8 Prefect task runs instead of ~700, which keeps orchestration overhead near the plain
# loop's (bench/results.md). Transient I/O is retried per (tenant, source) inside a batch.
GATHER_BATCHES = 8


def run_reports(job: RunJob, delivery: Delivery, steps: RunSteps | None = None, *,
                loaded: tuple[list[ReportDefinition], list[Problem]] | None = None,
                gathered: MetricValues | None = None) -> RunResult:
    """The whole run. Never raises for a report, tenant or source that fails: the summary says which and
    why. A backend that cannot send at all fails the run first, before anything is rendered.

    ``loaded``: definitions (and their problems) the caller already loaded, so they are not compiled
    twice. ``gathered``: filled with the metric values the run gathered (check and preview say which
    were unavailable)."""
    steps = steps or InProcessSteps()
    config, period = job.config, job.period
    if delivery.backend is not None and not job.dry_run:
        delivery.backend.preflight()  # nothing is rendered or sent when the backend cannot send at all
    definitions, problems = loaded or load_definitions(config.reports_path)
    for problem in problems:
        log.error("report definition problem: %s", problem)
    plan = plan_run(config, definitions, period, job.roles, job.tenants, problems)
    log.info("period %s: %d report(s), %d gather(s)", period.label, len(plan.instances), len(plan.gathers))

    tenant_ids = list(dict.fromkeys(tenant_id for tenant_id, _ in plan.gathers))
    values = gather_values(plan, steps.gather(job, plan, tenant_batches(tenant_ids, GATHER_BATCHES)))
    if gathered is not None:
        gathered.update(values)

    by_role: dict[str, list[ReportInstance]] = defaultdict(list)
    for instance in plan.instances:
        if in_scope(instance, job.scope):
            by_role[instance.role].append(instance)
    produced = steps.produce(job, delivery, dict(by_role), values)
    outcomes: list[Outcome] = []
    checks: list[tuple[str, CheckResult]] = []
    actions: list[dict[str, str]] = []
    rendered: dict[str, RenderedEmail] = {}
    for role, instances in by_role.items():
        result = produced[role]
        if isinstance(result, BaseException):  # the step itself crashed; the other roles still count
            log.error("render and deliver %s crashed: %s", role, result)
            outcomes.extend(Outcome(role, instance.key, [], "failed", reason=f"task crashed: {result}")
                            for instance in instances)
            continue
        for instance, report in zip(instances, result, strict=True):
            outcomes.extend(report.outcomes)
            checks.extend((role, check) for check in report.checks)
            for variant, email in report.rendered.items():
                rendered[report_key(instance, variant)] = email
                actions.extend(email.actions)

    summary = summarise(period, outcomes, checks, plan.definition_problems, job.run_folder, actions)
    if delivery.records is not None and not job.dry_run:
        add_delivery_feedback(summary, report_new_suppressions(delivery.records, job.run_name))
        if config.tasks is not None:
            add_hand_off(summary, steps.hand_off(job, delivery, actions))
    return RunResult(summary, plan, outcomes, rendered)


def gather_values(plan: RunPlan, batches: GatherResult) -> MetricValues:
    """The gathered values of every batch; a batch whose step crashed leaves its tenants' metrics
    unavailable with the crash as the reason (gathering itself never raises for a source's failure)."""
    values: MetricValues = {}
    for batch, result in batches:
        if not isinstance(result, BaseException):
            values.update(result)
            continue
        log.error("gathering for %s failed: %s", ", ".join(batch), result)
        for tenant_id in batch:
            values[tenant_id] = {}
            for (tenant, source_name), metrics in plan.gathers.items():
                if tenant == tenant_id:
                    values[tenant_id].update(unavailable_after_error(source_name, metrics, result))
    return values


def add_hand_off(summary: dict[str, Any], hand_off: HandOff | BaseException) -> None:
    """The agenda hand-off never fails delivered reports: its failures become warnings."""
    if isinstance(hand_off, BaseException):
        summary["action_hand_off"] = {"posted": 0, "already_posted": 0,
                                      "failed": [{"id": "", "text": "(all)", "reason": str(hand_off)}]}
        summary["warnings"].append(f"agenda hand-off crashed: {hand_off}")
        return
    summary["action_hand_off"] = hand_off.as_json()
    for failure in hand_off.failed:
        summary["warnings"].append(f"action not handed off: {failure['text']}: {failure['reason']}")


def run_plain(config: PortfolioConfig, period: Period, *, roles=None, tenants=None, dry_run: bool = False,
              backend: DeliveryBackend | None = None, records: RecordStore | None = None, resend: bool = False,
              run: str = "", loaded: tuple[list[ReportDefinition], list[Problem]] | None = None,
              only: Selection | None = None, every_variant: bool = False, gathered: MetricValues | None = None,
              generated_at: dt.datetime | None = None, draw_charts: bool = True, keep_messages: bool = True,
              ) -> tuple[dict[str, Any], dict[str, RenderedEmail]]:
    """``run_reports`` in this process with a backend and records the caller chose: the summary and the
    rendered email per report key. Without ``records`` every message is sent; with them, only those not
    yet sent for the period. ``run`` names this run in the records (default: a fresh unique id)."""
    job = RunJob(config, period, roles=roles, tenants=tenants, dry_run=dry_run, resend=resend, only=only,
                 every_variant=every_variant, generated_at=generated_at, draw_charts=draw_charts, run_id=run,
                 keep_messages=keep_messages)
    result = run_reports(job, Delivery(backend, records), loaded=loaded, gathered=gathered)
    return result.summary, result.rendered
