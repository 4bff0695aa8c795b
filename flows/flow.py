"""The Prefect flows: the run (and a sharded run's shard), run naming, the alert hook and the Prefect settings
of a local run. The run itself is ``flows.orchestrator.run.run_reports``; its heavy steps execute as tasks
(``flows.steps``); this module says what the run leaves in Prefect (artifacts, the status board, its final
state with a brief summary).

Task granularity: a few gather tasks over batches of tenants (``GATHER_BATCHES``), with retries of
transient I/O per (tenant, source) inside them, and one task per report role renders and delivers; finer
tasks multiplied orchestration overhead (bench/) and added nothing the per-source retries don't give.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger
from prefect.artifacts import MarkdownArtifact, create_table_artifact
from prefect.client.orchestration import get_client
from prefect.runtime import deployment as current_deployment
from prefect.runtime import flow_run as current_flow_run
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, PREFECT_UI_URL, temporary_settings
from prefect.states import Completed, Failed, State

from flows.core.config import PortfolioConfig, default_config_path, load_config_once
from flows.core.errors import ReportError, RunFailures
from flows.core.period import Period, parse_period, resolve_period
from flows.delivery import with_backend
from flows.orchestrator import run_page
from flows.orchestrator.alerts import build_alert_email, run_period_label, send_to_operations
from flows.orchestrator.history import DELIVERY_TABLE_KEY, DeliveryTable, update_status_board
from flows.orchestrator.local_runs import LOCAL_RUN_MARKERS_ENV, LocalRunMarkers
from flows.orchestrator.run import (
    GATHER_BATCHES,
    Delivery,
    RunJob,
    RunResult,
    run_reports,
)
from flows.orchestrator.run_page import short_reason
from flows.orchestrator.shards import ShardResult, shard_count, shard_rows
from flows.orchestrator.summary import RunDetails, brief_summary
from flows.plan.plan import MetricValues
from flows.plan.selection import Selection
from flows.send_rate import shared_send_rate
from flows.steps import ShardedSteps, TaskSteps, online_workers

__all__ = ["GATHER_BATCHES", "send_exec_reports", "send_exec_reports_shard", "run_inline", "run_summary", "run_url", "trigger_deployment",
           "fetch_delivery_tables", "mark_killed_local_runs_crashed", "prefect_run_is_over", "run_locally"]

# The status board: one artifact key, a new version per run (Prefect UI: Artifacts -> exec-reports-status).
STATUS_BOARD_KEY = "exec-reports-status"


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


# ---- run naming: the period a run reports on, resolved once per run ----------------------------------

_RESOLVED_PERIODS: dict[tuple, Period] = {}


def run_period(config: PortfolioConfig, parameters: dict[str, Any], from_deployment: bool | None = None) -> Period:
    """The period this run reports on: the ``period`` parameter, else the one before the run's scheduled
    time (in the portfolio's timezone), so a late or retried run still reports the intended period, of
    the deployment's ``period_kind`` (a week for ``weekly``, a month for ``monthly-finance``).

    ``portfolio.default_period`` (a snapshot's period, like the sample's) applies to local runs only:
    a deployment's schedule always decides its own period. Resolved once per run: the run's name, its
    body and its failure hook ask for the same parameters and scheduled time."""
    scheduled = current_flow_run.scheduled_start_time
    reference = scheduled.astimezone(ZoneInfo(config.portfolio.timezone)).date()
    if from_deployment is None:  # in the run itself; a hook, after the run, passes what its flow run says
        from_deployment = current_deployment.id is not None
    default = None if from_deployment else config.portfolio.default_period
    key = (str(config.path), parameters.get("period"), parameters.get("period_kind"), reference, default)
    if key not in _RESOLVED_PERIODS:
        if len(_RESOLVED_PERIODS) > 64:
            _RESOLVED_PERIODS.clear()
        _RESOLVED_PERIODS[key] = resolve_period(parameters.get("period") or default,
                                                parameters.get("period_kind") or config.portfolio.period_kind,
                                                reference)
    return _RESOLVED_PERIODS[key]


def readable_run_name(parameters: dict[str, Any], from_deployment: bool | None = None) -> str:
    """e.g. ``2026-W47 cfo,accounting (dry run)``: the period reported on, visible in the run list."""
    roles = ",".join(parameters.get("roles") or []) or "all roles"
    try:
        period = run_period(load_config_once(parameters.get("config") or default_config_path()), parameters,
                            from_deployment).label
    except ReportError:
        period = parameters.get("period") or "period unknown"  # the flow itself will fail with the reason
    tenants = parameters.get("tenants")
    return f"{period} {roles}" + (f" for {','.join(tenants)}" if tenants else "") + \
        (" (dry run)" if parameters.get("dry_run") else "") + (" (resend)" if parameters.get("resend") else "")


def _flow_run_name() -> str:
    return readable_run_name(current_flow_run.parameters)


# The whole summary of every run this process ran (the flow returns only its brief: counts and ids).
RUN_DETAILS = RunDetails()


def run_summary(state) -> dict[str, Any] | None:
    """The JSON run summary of a finished run: the whole one when this process ran it, else the brief one
    (counts and ids) it returned when Completed or carried in its Failed state's RunFailures. None for a
    crash (no summary was written)."""
    if (details := RUN_DETAILS.get(str(state.state_details.flow_run_id))) is not None:
        return details
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
        name = readable_run_name(flow_run.parameters, flow_run.deployment_id is not None)
        alert = build_alert_email(config, run_name=name, state_name=state.name,
                                  state_message=state.message or "", run_url=run_url(flow_run.id), summary=summary,
                                  period=run_period_label(config, flow_run.parameters, flow_run.expected_start_time,
                                                          flow_run.deployment_id is not None))
        location = send_to_operations(config, alert, (summary or {}).get("run"), name)
        log.warning("run %s ended %s: alert for %s at %s", name, state.name, ", ".join(alert.to), location)
    except Exception as exc:  # an alert that cannot be sent must not hide the original failure
        log.error("run %s ended %s and the operations alert could not be sent: %s: %s",
                  flow_run.name, state.name, type(exc).__name__, exc)


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
    shards: int | Literal["auto"] | None = None,
):
    """Gather metrics, render every selected report and deliver it; returns the JSON run summary.

    The run ends Failed when any report, tenant or source failed, after everything else was
    delivered; the summary lists ``sent``, ``failed`` (with reasons) and ``skipped``.
    Messages already sent for the period are skipped unless ``resend``; ``delivery`` picks the backend
    (outbox, ses, smtp) for this run over the config file's; ``only`` (``report/tenant[/recipient]``
    selectors) delivers just those messages, e.g. ``resend`` of the ones whose state is unknown.
    ``shards`` (a number or "auto"; default the config's ``portfolio.shards``) splits the tenants into shard
    flow runs on the work pool (``send_exec_reports_shard``) and renders the portfolio reports from them.
    """
    logger = get_run_logger()
    if markers_folder := os.environ.get(LOCAL_RUN_MARKERS_ENV):
        # Run by this machine's CLI: if the process is killed, the next command finds this marker and
        # marks the run Crashed (see flows/orchestrator/local_runs.py).
        LocalRunMarkers(Path(markers_folder)).mark(str(current_flow_run.id))
    portfolio = with_backend(load_config_once(config or default_config_path()), delivery)
    name = readable_run_name(current_flow_run.parameters)
    job = RunJob(portfolio, run_period(portfolio, current_flow_run.parameters), roles=roles, tenants=tenants,
                 dry_run=dry_run, resend=resend, only=Selection.parse(only), run_name=name)
    # Claims name the flow run: its id is unique, and Prefect can say whether it is over.
    job.run_id = str(current_flow_run.id or job.run_id)
    run_delivery = Delivery.open(job, prefect_run_is_over)
    if run_delivery.records is not None:
        logger.info("delivery through %s; records in %r%s", run_delivery.backend.name, run_delivery.records,
                    " (resend)" if resend else "")
    setting = portfolio.portfolio.shards if shards is None else shards
    count = shard_count(setting, len(tenants or portfolio.tenants), _online_workers() if setting == "auto" else 1)
    if count == 1:
        return finish_run(job, run_reports(job, run_delivery, TaskSteps()), portfolio)
    job.scope = "portfolio"
    steps = ShardedSteps(count, {"roles": roles, "dry_run": dry_run, "config": config, "resend": resend,
                                 "delivery": delivery, "only": only})
    with shared_send_rate(run_delivery):
        result = run_reports(job, run_delivery, steps)
    steps.merge_into(result)
    return finish_run(job, result, portfolio)


def _online_workers() -> int:
    """How many workers are online in this run's work pool ("auto" shards); 1 outside a deployment run."""
    try:
        with get_client(sync_client=True) as client:
            return max(1, online_workers(client, current_flow_run.id))
    except Exception as exc:  # "auto" then means one shard: the run still goes ahead
        get_run_logger().warning("online workers not known (%s: %s): one shard", type(exc).__name__, exc)
        return 1


def _shard_run_name() -> str:
    parameters = current_flow_run.parameters
    return f"{parameters.get('run_name') or parameters.get('period')} shard {parameters.get('shard')}"


# A shard's result (every figure of its tenants) is kept in result storage for the parent to read: the local
# file system by default, an S3 bucket through prefect-aws in AWS (PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK).
@flow(name="send-exec-reports-shard", flow_run_name=_shard_run_name, log_prints=False, persist_result=True,
      result_serializer="pickle")
def send_exec_reports_shard(
    tenants: list[str],
    shard: int,
    period: str,
    run_folder: str,
    run_name: str,
    generated_at: str,
    roles: list[str] | None = None,
    dry_run: bool = False,
    config: str | None = None,
    resend: bool = False,
    delivery: str | None = None,
    only: list[str] | None = None,
) -> ShardResult:
    """One shard of a sharded run (started by ``send_exec_reports``): gather every figure these tenants need,
    render and deliver their own reports, and return the figures and outcomes to the parent. Completes
    even when some of its reports failed (their outcomes say so): only a shard that could not finish is
    run again."""
    portfolio = with_backend(load_config_once(config or default_config_path()), delivery)
    job = RunJob(portfolio, parse_period(period), roles=roles, tenants=tenants, dry_run=dry_run, resend=resend,
                 only=Selection.parse(only), run_name=f"{run_name} shard {shard}", run_folder=run_folder,
                 generated_at=dt.datetime.fromisoformat(generated_at), scope="tenant")
    job.run_id = str(current_flow_run.id or job.run_id)
    values: MetricValues = {}
    shard_delivery = Delivery.open(job, prefect_run_is_over)
    with shared_send_rate(shard_delivery):
        result = run_reports(job, shard_delivery, TaskSteps(), gathered=values)
    return ShardResult(shard, tenants, values, result.outcomes, result.summary)


def finish_run(job: RunJob, result: RunResult, portfolio: PortfolioConfig):
    """What the run leaves in Prefect: the deliveries table, the status board, the checks table, a
    notice of new suppressions, and its final state (Failed with the reasons when anything failed)."""
    summary, period = result.summary, job.period
    RUN_DETAILS.remember(str(current_flow_run.id), summary)
    delivery_rows = run_page.delivery_rows(result.outcomes, result.plan.definition_problems, period.label)
    failures = run_page.failures_markdown(result.outcomes, result.plan.definition_problems, period.label)
    create_table_artifact(key=DELIVERY_TABLE_KEY, table=delivery_rows,
                          description=f"Every message of this run and its outcome, failures first ({period.label})"
                          + (f"; every failure's whole reason: artifact {run_page.FAILURES_KEY}" if failures else ""))
    if failures:
        MarkdownArtifact(key=run_page.FAILURES_KEY, markdown=failures,
                         description=f"Every failure of this run with its whole reason ({period.label})").create()
    if not job.dry_run:
        publish_status_board(delivery_rows, job.run_name)
    if summary.get("shards"):
        create_table_artifact(key="exec-reports-shards", table=shard_rows(summary["shards"]),
                              description=f"Each shard of this run: its tenants, flow runs, attempts and end "
                                          f"({period.label})")
    if summary["checks"]:
        create_table_artifact(key="exec-reports-checks", table=summary["checks"],
                              description=f"Checks that fired or could not be evaluated ({period.label})")
    if summary.get("delivery_feedback") and not summary["failed"]:  # a failed run's alert lists them instead
        notice = build_alert_email(portfolio, run_name=job.run_name, state_name="Completed", state_message="",
                                   run_url=run_url(current_flow_run.id), summary=summary)
        send_to_operations(portfolio, notice, job.run_folder, notice.subject)
    if summary["failed"]:
        reasons = "; ".join(f"{f['report']}{'/' + f['tenant'] if f['tenant'] else ''}: {short_reason(f['reason'])}"
                            for f in summary["failed"][:5])
        message = f"{len(summary['failed'])} failure(s): {reasons}"
        return Failed(message=message, data=RunFailures(message, brief_summary(summary)))
    return Completed(message=f"{len(summary['sent'])} sent", data=brief_summary(summary))


def read_status_board() -> list[dict[str, Any]]:
    """The latest version of the status board artifact (empty before the first real run)."""
    return next((rows for _, rows in _latest_artifacts(STATUS_BOARD_KEY, limit=1)), [])


def _latest_artifacts(key: str, limit: int) -> list[tuple[Any, list[dict[str, Any]]]]:
    """The latest versions of a table artifact, newest first, each with its rows."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                          sort=ArtifactSort.CREATED_DESC, limit=limit)
    return [(a, list((json.loads(a.data) if isinstance(a.data, str) else a.data) or [])) for a in artifacts]


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
    return [DeliveryTable(artifact.created, str(artifact.flow_run_id), rows)
            for artifact, rows in _latest_artifacts(DELIVERY_TABLE_KEY, limit)]


def trigger_deployment(name: str, parameters: dict[str, Any], *, idempotency_key: str | None = None,
                       scheduled_time: dt.datetime | None = None) -> dict[str, Any]:
    """Start a deployment run without waiting for it; returns its id and where to watch it."""
    from prefect.deployments import run_deployment

    flow_run = run_deployment(name, parameters=parameters, timeout=0, idempotency_key=idempotency_key,
                              scheduled_time=scheduled_time, as_subflow=False)
    return {"flow_run_id": str(flow_run.id), "flow_run_name": flow_run.name, "deployment": name,
            "parameters": parameters, "state": flow_run.state.name if flow_run.state else None,
            "watch": run_url(flow_run.id)}


# Prefect's per-run work that a run this machine's CLI starts (and the benchmarks, which time that run) does
# not need; set for that run only. A deployment run on a worker and the Lambda's inline run keep the defaults.
LOCAL_RUN_SETTINGS = {
    # Heartbeats tell the server a run's process is alive. Here the CLI's run markers do that (a run whose
    # process died is marked Crashed by the next command: orchestrator/local_runs.py), and the engine joins the
    # heartbeat thread when the run ends, which sleeps in 1 s steps: up to 1 s of the user's wait for nothing.
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
}


def run_locally(**parameters: Any) -> State:
    """The flow in this process as `exec-reports run` runs it (LOCAL_RUN_SETTINGS); its final state."""
    with temporary_settings(updates=LOCAL_RUN_SETTINGS):
        return send_exec_reports(**parameters, return_state=True)


def run_inline(parameters: dict[str, Any], scheduled_time: dt.datetime | None = None) -> dict[str, Any]:
    """Run the flow in this process and return its summary (which reports were sent, which failed).

    An inline run has no scheduled time of its own, so the trigger's (an EventBridge schedule's, else
    now) decides the period, as it would for a deployment run (``portfolio.default_period`` is for local
    runs only); delivery records keep a redelivered trigger from sending anything twice."""
    if not parameters.get("period"):
        config = load_config_once(parameters.get("config") or default_config_path())
        reference = (scheduled_time or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(config.portfolio.timezone)).date()
        period = resolve_period(None, parameters.get("period_kind") or config.portfolio.period_kind, reference)
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
                marked.append(readable_run_name(flow_run.parameters, flow_run.deployment_id is not None))
            markers.clear(orphan.flow_run_id)
    return marked
