"""The Prefect flow: thin orchestration over the plain functions in ``flows.pipeline``.

Task granularity: gathering runs as a few tasks over batches of tenants (GATHER_BATCHES), with
retries of transient I/O per (tenant, source) inside them, and one task per report role renders and
delivers. Per-(tenant, source) or per-message tasks multiplied orchestration overhead (bench/) without
adding anything the per-source retries and the backends' own retries don't give.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import uuid
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.artifacts import MarkdownArtifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run as current_flow_run
from prefect.settings import PREFECT_UI_URL
from prefect.states import Completed, Failed
from prefect.utilities.annotations import quote

from flows.actions import HandOff, hand_off_actions
from flows.alerts import build_alert_email
from flows.config import PortfolioConfig, default_config_path, load_config
from flows.definitions import load_definitions
from flows.delivery import DeliveryBackend, get_backend, with_backend
from flows.delivery.base import slug
from flows.delivery.feedback import report_new_suppressions
from flows.delivery.records import RecordStore, open_record_store
from flows.delivery.selection import Selection
from flows.errors import DeliveryError, ReportError, RunFailures
from flows.history import DELIVERY_TABLE_KEY, DeliveryTable, update_status_board
from flows.local_server import LOCAL_RUN_MARKERS_ENV, LocalRunMarkers
from flows.period import Period, resolve_period
from flows.pipeline import (
    CheckResult,
    Outcome,
    ProducedReport,
    ReportInstance,
    RunPlan,
    add_delivery_feedback,
    gather_tenants,
    plan_run,
    produce_report,
    report_key,
    run_folder_name,
    summarise,
    tenant_batches,
    unavailable_after_error,
)

# The status board: one artifact key, a new version per run (Prefect UI: Artifacts -> exec-reports-status).
STATUS_BOARD_KEY = "exec-reports-status"
# Gathering runs as a few tasks, each over a batch of tenants, not one task per (tenant, source):
# at 100 tenants that is 8 task runs instead of ~700, which is what keeps orchestration overhead
# near the plain loop's cost (bench/results.md). Retries of transient I/O happen per (tenant, source)
# inside the batch (pipeline.gather_with_retries), so one flaky call does not redo a whole batch.
GATHER_BATCHES = 8


# persist_result=False on every task, said explicitly: only the flow's result (the run summary) is kept;
# a task's result (every tenant's metrics, the outcomes) is read once by the flow and never again
# (NO_CACHE), so it must never be written to result storage.
@task(name="gather-metrics", task_run_name="gather metrics: {label}", cache_policy=NO_CACHE, persist_result=False)
def gather_metrics(config: PortfolioConfig, plan: RunPlan, tenant_ids: list[str], label: str) -> dict[str, Any]:
    return gather_tenants(config, plan, tenant_ids)


@task(name="produce-reports", task_run_name="render and deliver {role}", cache_policy=NO_CACHE, persist_result=False)
def produce_reports(role: str, instances: list[ReportInstance], values: dict, config: PortfolioConfig,
                    period: Period, backend: DeliveryBackend, dry_run: bool, records: RecordStore | None = None,
                    run: str = "", resend: bool = False, run_name: str = "", only: Selection | None = None,
                    ) -> list[ProducedReport]:
    results, sections = [], []
    for instance in instances:
        produced = produce_report(instance, values, config, period, backend, dry_run=dry_run, records=records,
                                  run=run, resend=resend, run_name=run_name, only=only,
                                  run_is_over=prefect_run_is_over)
        sections.extend(report_sections(instance, produced, period))
        # The flow needs outcomes, checks and agenda items back, not the rendered messages (HTML, charts):
        # dropping them here keeps one message at a time in memory instead of every message of the run.
        results.append(replace(produced, rendered={variant: replace(rendered, markdown="", html="", text="", images=[])
                                                   for variant, rendered in produced.rendered.items()}))
    # Artifacts are history, not delivery: failing to record one is logged and never turns a delivered
    # report into a failure.
    try:
        record_role_reports(role, sections, period)
    except Exception as error:
        logging.getLogger("exec_reports").error("report artifact for %s not recorded: %s: %s", role,
                                                type(error).__name__, error)
    return results


def report_sections(instance: ReportInstance, produced: ProducedReport, period: Period) -> list[str]:
    """A report's section of its role's artifact: its subject, its key, then its Markdown."""
    return [f"## {rendered.subject}\n\n`{report_key(instance, variant)}` · {period.label}\n\n"
            f"{rendered.markdown.strip()}\n" for variant, rendered in produced.rendered.items()]


def record_role_reports(role: str, sections: list[str], period: Period) -> None:
    """One Markdown artifact per role and run (key ``reports-<role>``) holding all its reports: one API
    call where one artifact per report cost one per message (205 at 100 tenants), which the Prefect
    server answers with the same CPUs the run uses (bench/results.md)."""
    if sections:
        heading = f"# {role}: {len(sections)} report(s), {period.label}\n"
        MarkdownArtifact(key=slug(f"reports-{role}"), markdown="\n---\n\n".join([heading, *sections]),
                         description=f"The {len(sections)} {role} report(s) this run rendered ({period.label})"
                         ).create()


@task(name="hand-off-actions", task_run_name="hand off agenda items", cache_policy=NO_CACHE, persist_result=False)
def hand_off_agenda(actions: list[dict[str, str]], period: str, config: PortfolioConfig, records: RecordStore,
                    run: str, resend: bool) -> HandOff:
    return hand_off_actions(actions, period, config, records, run=run, resend=resend)


_FINISHED_RUNS: set[str] = set()


def prefect_run_is_over(run_id: str) -> bool | None:
    """Liveness for delivery claims: has the flow run that holds a claim ended (Completed, Failed,
    Crashed, Cancelled)? None when Prefect cannot tell (an id from a plain run, another API, no answer);
    then the claim's lease decides."""
    if run_id in _FINISHED_RUNS:
        return True
    try:
        flow_run_id = uuid.UUID(run_id)
    except ValueError:
        return None
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state
    except Exception:
        return None
    if state is None:
        return None
    if state.is_final():
        _FINISHED_RUNS.add(run_id)
        return True
    return False


_LOADED_CONFIGS: dict[tuple, PortfolioConfig] = {}


def load_config_once(path: str) -> PortfolioConfig:
    """The run name, the flow body and the failure hook all need the config: parse it once per
    process and file version (a large portfolio's YAML takes a noticeable time to parse and check)."""

    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except OSError:
        return load_config(path)  # raises the clear "not found" error
    # The config's defaults come from these environment variables too, so they are part of the key.
    # A digest, so no secret value (SMTP_PASSWORD, a token) is kept in memory as a cache key.
    settings_env = hashlib.sha256(repr(sorted((name, value) for name, value in os.environ.items()
                                              if name.startswith(("SES_", "SMTP_", "EXEC_REPORTS_")))).encode())
    key = (str(resolved), stat.st_mtime_ns, stat.st_size, settings_env.hexdigest())
    if key not in _LOADED_CONFIGS:
        _LOADED_CONFIGS.clear()
        _LOADED_CONFIGS[key] = load_config(path)
    return _LOADED_CONFIGS[key]


def _scheduled_reference(config: PortfolioConfig) -> dt.date:
    """The scheduled time (in the portfolio's timezone) decides the period, so late runs stay correct."""
    scheduled = current_flow_run.scheduled_start_time
    return scheduled.astimezone(ZoneInfo(config.portfolio.timezone)).date()


def _run_period(config: PortfolioConfig, period: str | None, period_kind: str | None) -> Period:
    return resolve_period(period or config.portfolio.default_period, period_kind or config.portfolio.period_kind,
                          _scheduled_reference(config))


def readable_run_name(parameters: dict[str, Any]) -> str:
    """e.g. ``2026-W47 cfo,accounting (dry run)``: the period reported on, visible in the run list."""
    roles = ",".join(parameters.get("roles") or []) or "all roles"
    try:
        config = load_config_once(parameters.get("config") or default_config_path())
        period = _run_period(config, parameters.get("period"), parameters.get("period_kind")).label
    except ReportError:
        period = parameters.get("period") or "period unknown"  # the flow itself will fail with the reason
    tenants = parameters.get("tenants")
    return f"{period} {roles}" + (f" for {','.join(tenants)}" if tenants else "") + \
        (" (dry run)" if parameters.get("dry_run") else "") + (" (resend)" if parameters.get("resend") else "")


def _flow_run_name() -> str:
    return readable_run_name(current_flow_run.parameters)


def run_summary(state) -> dict[str, Any] | None:
    """The JSON run summary a finished run left: its return value when Completed, or the summary carried
    by its Failed state's RunFailures. None for a crash (no summary was written)."""
    data = state.result(raise_on_failure=False)
    if isinstance(data, RunFailures):
        return data.summary
    return data if isinstance(data, dict) else None


def run_url(flow_run_id) -> str | None:
    ui_url = PREFECT_UI_URL.value()
    return f"{ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}" if ui_url else None


def _alert_operations(flow, flow_run, state) -> None:
    """Flow hook: one email per failed or crashed run to the operations address, same backend."""
    # Hooks run after the run context is gone, so they log through the stdlib logger.
    log = logging.getLogger("exec_reports")
    try:
        config = with_backend(load_config_once(flow_run.parameters.get("config") or default_config_path()),
                              flow_run.parameters.get("delivery"))
        summary = run_summary(state)
        # The hook's flow_run may predate the run's renaming (and a crash can come before it), so the
        # readable name is worked out again from the parameters rather than read from it.
        name = readable_run_name(flow_run.parameters)
        alert = build_alert_email(config, run_name=name, state_name=state.name,
                                  state_message=state.message or "", run_url=run_url(flow_run.id), summary=summary)
        location = send_to_operations(config, alert, (summary or {}).get("run"), name)
        log.warning("run %s ended %s: alert for %s at %s", name, state.name, ", ".join(alert.to), location)
    except Exception as exc:  # an alert that cannot be sent must not hide the original failure
        log.error("run %s ended %s and the operations alert could not be sent: %s: %s",
                  flow_run.name, state.name, type(exc).__name__, exc)


def send_to_operations(config: PortfolioConfig, alert, folder: str | None, run_name: str) -> str:
    """Send an operations email through the run's backend; where that fails, keep it in the local outbox."""
    log = logging.getLogger("exec_reports")
    folder = folder or f"alerts_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    try:
        result = get_backend(config, folder).send(alert)
        if result.status != "sent":
            raise DeliveryError(result.error or result.status)
    except Exception as exc:
        # The backend that failed the run (an unverified sender, a paused account) may fail the
        # alert too: keep it in the local outbox so it exists somewhere, and say where.
        from flows.delivery.outbox import OutboxBackend

        result = OutboxBackend(config.outbox_path / folder).send(alert)
        log.error("run %s: the alert could not go through %s (%s: %s); written to %s instead", run_name,
                  config.delivery.backend, type(exc).__name__, exc, result.location)
    return result.location


# persist_result: a deployment run's summary stays readable after the run (in PREFECT_HOME/storage).
@flow(name="send-exec-reports", flow_run_name=_flow_run_name, log_prints=False, persist_result=True,
      on_failure=[_alert_operations], on_crashed=[_alert_operations])
def send_exec_reports(
    roles: list[str] | None = None,
    tenants: list[str] | None = None,
    period: str | None = None,
    dry_run: bool = False,
    config: str | None = None,
    period_kind: Literal["week", "month"] | None = None,
    resend: bool = False,
    delivery: str | None = None,
    only: list[str] | None = None,
):
    """Gather metrics, render every selected report and deliver it; returns the JSON run summary.

    The run ends Failed when any report, tenant or source failed, after everything else was
    delivered; the summary lists ``sent``, ``failed`` (with reasons) and ``skipped``.
    Messages already sent for the period are skipped unless ``resend``; ``delivery`` picks the backend
    (outbox, ses, smtp) for this run over the config file's; ``only`` (``report/tenant[/recipient]``
    selectors) delivers just those messages, e.g. ``resend`` of the ones whose state is unknown.
    """
    logger = get_run_logger()
    if markers_folder := os.environ.get(LOCAL_RUN_MARKERS_ENV):
        # Run by this machine's CLI: if the process is killed, the next command finds this marker and
        # marks the run Crashed (see flows/local_server.py).
        LocalRunMarkers(Path(markers_folder)).mark(str(current_flow_run.id))
    portfolio = with_backend(load_config_once(config or default_config_path()), delivery)
    selection = Selection.parse(only)
    if selection is not None and not roles:
        roles = selection.roles
    chosen_period = _run_period(portfolio, period, period_kind)
    definitions, problems = load_definitions(portfolio.reports_path)
    for problem in problems:
        logger.error("report definition problem: %s", problem)
    plan = plan_run(portfolio, definitions, chosen_period, roles, tenants, problems)
    run_folder = run_folder_name(chosen_period)
    logger.info("period %s: %d report(s), %d gather(s)", chosen_period.label, len(plan.instances), len(plan.gathers))
    # Before any work: a backend that cannot send (unverified sender, paused account) fails the run once.
    backend = get_backend(portfolio, run_folder)
    records = None
    if not dry_run:
        backend.preflight()
        records = open_record_store(portfolio)
        logger.info("delivery through %s; records in %r%s", backend.name, records, " (resend)" if resend else "")

    # Claims name the flow run (its id is unique; Prefect can say whether it is over), records show the folder.
    run_id = str(current_flow_run.id or run_folder)
    tenant_ids = list(dict.fromkeys(tenant_id for tenant_id, _ in plan.gathers))
    batches = tenant_batches(tenant_ids, GATHER_BATCHES)
    futures = [gather_metrics.submit(quote(portfolio), quote(plan), batch, batch[0] if len(batch) == 1 else
                                     f"{batch[0]} .. {batch[-1]} ({len(batch)} tenants)") for batch in batches]
    values: dict[str, dict[str, Any]] = {}
    for batch, future in zip(batches, futures, strict=True):
        future.wait()
        if future.state.is_completed():
            values.update(future.result())
        else:  # gather_tenants never raises for a source's failure; this is a crash of the task itself
            error = future.state.result(raise_on_failure=False)
            logger.error("gathering for %s failed: %s", ", ".join(batch), error)
            for tenant_id in batch:
                values[tenant_id] = {}
                for (t, source_name), metrics in plan.gathers.items():
                    if t == tenant_id:
                        values[tenant_id].update(unavailable_after_error(
                            source_name, metrics, error if isinstance(error, BaseException) else RuntimeError(str(error))))

    by_role: dict[str, list[ReportInstance]] = defaultdict(list)
    for instance in plan.instances:
        by_role[instance.role].append(instance)
    # quote(): large arguments (metric values, plans, config) pass through untouched; otherwise Prefect
    # walks every element looking for futures, which costs seconds at a hundred tenants.
    # Rendering is CPU-bound Python under one GIL. Delivering through SES or SMTP mostly waits on the
    # provider, so roles overlap there; with the local outbox (or a dry run) nothing waits, and parallel
    # roles only contend for the GIL: one after another costs ~13% less CPU at 100 tenants (bench/).
    overlap_roles = not dry_run and backend.name != "outbox"
    report_futures = []
    for role, instances in by_role.items():
        future = produce_reports.submit(role, quote(instances), quote(dict(values)), quote(portfolio), chosen_period,
                                        quote(backend), dry_run, quote(records), run_id, resend, run_folder,
                                        quote(selection))
        if not overlap_roles:
            future.wait()
        report_futures.append(future)
    outcomes: list[Outcome] = []
    checks: list[tuple[str, CheckResult]] = []
    actions: list[dict[str, str]] = []
    for role, future in zip(by_role, report_futures, strict=True):
        future.wait()
        if not future.state.is_completed():  # a crash of the task itself; the other roles still count
            error = future.state.result(raise_on_failure=False)
            logger.error("render and deliver %s crashed: %s", role, error)
            outcomes.extend(Outcome(role, instance.key, [], "failed", reason=f"task crashed: {error}")
                            for instance in by_role[role])
            continue
        for produced in future.result():
            outcomes.extend(produced.outcomes)
            checks.extend((role, c) for c in produced.checks)
            actions.extend(task for rendered in produced.rendered.values() for task in rendered.tasks)

    summary = summarise(chosen_period, outcomes, checks, plan.definition_problems, run_folder, actions)
    if records is not None:
        add_delivery_feedback(summary, report_new_suppressions(records, readable_run_name(current_flow_run.parameters)))
    if portfolio.tasks is not None and not dry_run:
        # The agenda hand-off never fails delivered reports: its failures become warnings.
        hand_off_future = hand_off_agenda.submit(quote(actions), chosen_period.label, quote(portfolio),
                                                 quote(records), run_folder, resend)
        hand_off_future.wait()
        if hand_off_future.state.is_completed():
            hand_off = hand_off_future.result()
            summary["action_hand_off"] = hand_off.as_json()
            for failure in hand_off.failed:
                summary["warnings"].append(f"action not handed off: {failure['text']}: {failure['reason']}")
        else:
            error = hand_off_future.state.result(raise_on_failure=False)
            summary["action_hand_off"] = {"posted": 0, "already_posted": 0,
                                          "failed": [{"id": "", "text": "(all)", "reason": str(error)}]}
            summary["warnings"].append(f"agenda hand-off crashed: {error}")
    delivery_rows = [{"period": chosen_period.label, "report": o.report, "tenant": o.tenant, "variant": o.variant,
                      "recipients": ", ".join(o.recipients), "status": o.status, "location": o.location,
                      "reason": o.reason} for o in outcomes] \
        + [{"period": chosen_period.label, "report": p.path, "tenant": "", "variant": "", "recipients": "",
            "status": "failed", "location": "",
            "reason": str(p)} for p in plan.definition_problems]
    create_table_artifact(key=DELIVERY_TABLE_KEY, table=delivery_rows,
                          description=f"Every message of this run and its outcome ({chosen_period.label})")
    if not dry_run:
        publish_status_board(delivery_rows, readable_run_name(current_flow_run.parameters))
    if summary["checks"]:
        create_table_artifact(
            key="exec-reports-checks",
            table=summary["checks"],
            description=f"Checks that fired or could not be evaluated ({chosen_period.label})",
        )
    if summary.get("delivery_feedback") and not summary["failed"]:  # a failed run's alert lists them instead
        notice = build_alert_email(portfolio, run_name=readable_run_name(current_flow_run.parameters),
                                   state_name="Completed", state_message="", run_url=run_url(current_flow_run.id),
                                   summary=summary)
        send_to_operations(portfolio, notice, run_folder, notice.subject)
    if summary["failed"]:
        reasons = "; ".join(f"{f['report']}/{f['tenant']}: {f['reason']}" for f in summary["failed"][:5])
        message = f"{len(summary['failed'])} failure(s): {reasons}"
        return Failed(message=message, data=RunFailures(message, summary))
    return Completed(message=f"{len(summary['sent'])} sent", data=summary)


def read_status_board() -> list[dict[str, Any]]:
    """The latest version of the status board artifact (empty before the first real run)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        latest = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[STATUS_BOARD_KEY])),
                                       sort=ArtifactSort.CREATED_DESC, limit=1)
    if not latest:
        return []
    data = json.loads(latest[0].data) if isinstance(latest[0].data, str) else latest[0].data
    return list(data or [])


def publish_status_board(delivery_rows: list[dict[str, Any]], run_name: str) -> None:
    """One keyed table artifact, a new version per run, that always shows every report and tenant's last
    send, last outcome and last failure. History, not delivery: a failure here is logged, never fatal.
    Two runs finishing at the same instant may each build on the same previous version (the later wins)."""
    try:
        board = update_status_board(read_status_board(), delivery_rows, run_name=run_name,
                                    now=dt.datetime.now(dt.UTC))
        create_table_artifact(key=STATUS_BOARD_KEY, table=board,
                              description="Every report and tenant: last sent, last outcome, last failure "
                                          "(updated by every run that delivers)")
    except Exception as exc:
        get_run_logger().warning("the status board could not be updated: %s: %s", type(exc).__name__, exc)


def fetch_delivery_tables(limit: int = 50) -> list[DeliveryTable]:
    """The delivery tables of the latest runs, newest first, from the configured Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[DELIVERY_TABLE_KEY])),
            sort=ArtifactSort.CREATED_DESC, limit=limit)
    tables = []
    for artifact in artifacts:
        rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
        tables.append(DeliveryTable(artifact.created, str(artifact.flow_run_id), list(rows or [])))
    return tables


def trigger_deployment(name: str, parameters: dict[str, Any], *, idempotency_key: str | None = None,
                       scheduled_time: dt.datetime | None = None) -> dict[str, Any]:
    """Start a deployment run without waiting for it; returns its id and where to watch it."""
    from prefect.deployments import run_deployment

    flow_run = run_deployment(name, parameters=parameters, timeout=0, idempotency_key=idempotency_key,
                              scheduled_time=scheduled_time, as_subflow=False)
    return {"flow_run_id": str(flow_run.id), "flow_run_name": flow_run.name, "deployment": name,
            "parameters": parameters, "state": flow_run.state.name if flow_run.state else None,
            "watch": run_url(flow_run.id)}


def run_inline(parameters: dict[str, Any], scheduled_time: dt.datetime | None = None) -> dict[str, Any]:
    """Run the flow in this process and return its summary (which reports were sent, which failed).

    An inline run has no scheduled time of its own, so the trigger's (an EventBridge schedule's)
    decides the period, as it would for a deployment run; delivery records keep a redelivered
    trigger from sending anything twice."""
    if scheduled_time is not None and not parameters.get("period"):
        config = load_config_once(parameters.get("config") or default_config_path())
        reference = scheduled_time.astimezone(ZoneInfo(config.portfolio.timezone)).date()
        period = resolve_period(config.portfolio.default_period,
                                parameters.get("period_kind") or config.portfolio.period_kind, reference)
        parameters = {**parameters, "period": period.label}
    state = send_exec_reports(**parameters, return_state=True)
    data = run_summary(state)
    if data is None:  # a crash: details go to the log, never into a response
        logging.getLogger("exec_reports").error("inline run ended %s: %s", state.name, state.message)
        return {"state": state.name, "summary": None, "error": "the run crashed; see the logs"}
    return {"state": state.name, "message": state.message, "summary": data}


def mark_killed_local_runs_crashed(markers: LocalRunMarkers) -> list[str]:
    """Runs this machine's CLI started whose process was killed: mark each Crashed and send its alert.

    Returns the readable names of the runs it marked. A run that already reached a final state (it was
    killed after finishing) only loses its marker."""
    from prefect.states import Crashed

    marked = []
    with get_client(sync_client=True) as client:
        for orphan in markers.orphaned():
            try:
                flow_run = client.read_flow_run(orphan.flow_run_id)
            except Exception as exc:  # e.g. the run lives in another server's database
                logging.getLogger("exec_reports").warning("killed run %s: not found on this Prefect API (%s)",
                                                          orphan.flow_run_id, exc)
                markers.clear(orphan.flow_run_id)
                continue
            if flow_run.state is None or not flow_run.state.is_final():
                crashed = Crashed(message=f"the exec-reports process running it (pid {orphan.pid}) was killed "
                                          f"before the run finished")
                client.set_flow_run_state(flow_run.id, crashed, force=True)
                _alert_operations(send_exec_reports, flow_run, crashed)
                marked.append(readable_run_name(flow_run.parameters))
            markers.clear(orphan.flow_run_id)
    return marked
