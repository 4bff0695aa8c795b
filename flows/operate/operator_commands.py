"""The operator's commands: ``run`` (the Prefect flow, on the local server unless an API is configured),
``server``, ``history``, ``deliveries``, ``suppression`` and ``snapshot``, and the tables they print."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from flows.operate.cli import config_and_period, print_table, progress


def use_local_server_unless_configured() -> None:
    """Point Prefect at the long-lived local server (started when needed) unless the user configured an API.

    Must run before Prefect is imported: Prefect reads PREFECT_API_URL when its settings load. A configured
    API is asked first whether it answers and is new enough (one line about it, not Prefect's tracebacks)."""
    from flows.operate.api_check import check_prefect_api
    from flows.operate.local_server import configured_api_url, ensure_server

    if url := configured_api_url():
        check_prefect_api(url)
        return
    info = ensure_server(progress=progress)
    os.environ["PREFECT_API_URL"] = info.api_url
    os.environ.setdefault("PREFECT_UI_URL", info.ui_url)


def cmd_run(args) -> int:
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "exec_reports")
    from flows.operate.local_server import local_run_markers
    from flows.operate.run_arguments import validate_run_arguments
    from flows.orchestrator.local_runs import LOCAL_RUN_MARKERS_ENV

    # Every argument and setting first: a mistake is one line and exit status 2, before any server starts.
    checked = validate_run_arguments(args)
    config, period = checked.config, checked.period
    if not args.dry_run:
        preflight_delivery(config, args.delivery)
    use_local_server_unless_configured()
    markers = local_run_markers()
    from flows.flow import mark_killed_local_runs_crashed, run_locally, run_summary, run_url

    for name in mark_killed_local_runs_crashed(markers):
        progress(f"note: the earlier run '{name}' was killed before it finished: marked Crashed, operations alerted")
    # Only the run this command starts leaves a marker (the variable is gone again afterwards, so a
    # program that calls main() and then runs flows itself leaves none).
    os.environ[LOCAL_RUN_MARKERS_ENV] = str(markers.folder)
    try:
        # The period is worked out here, as `check` and `preview` do, and passed on: one default everywhere.
        state = run_locally(roles=args.roles, tenants=args.tenants, period=period.label, dry_run=args.dry_run,
                            config=str(config.path), resend=args.resend, delivery=args.delivery, only=args.only)
    finally:
        os.environ.pop(LOCAL_RUN_MARKERS_ENV, None)
    flow_run_id = state.state_details.flow_run_id
    markers.clear(str(flow_run_id))
    link = run_url(flow_run_id)
    summary = run_summary(state)
    if summary is None:
        print(f"error: the flow run ended {state.name}: {state.message}", file=sys.stderr)
        if link:
            print(f"see the run in the Prefect UI: {link}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**summary, "flow_run": {"id": str(flow_run_id), "state": state.name, "url": link}},
                         indent=2, default=str))
    else:
        print_summary(summary)
        print(f"\nflow run: {state.name}" + (f" — {state.message}" if state.message else ""))
        if link:
            print(f"see it in the Prefect UI: {link}")
    return 0 if state.is_completed() else 1


def preflight_delivery(config, delivery: str | None) -> None:
    """Can the run's backend send at all (SMTP answers, SES is reachable and the sender verified)? Asked
    before a server starts or a run exists: a wrong setting is a usage error, an unreachable provider
    one line saying what to do, and either way nothing is sent and no alert goes out."""
    from flows.core.errors import ConfigurationError, DeliveryError, UsageError
    from flows.delivery import get_backend, with_backend

    name = delivery or "the delivery backend"
    try:
        backend = get_backend(with_backend(config, delivery), "preflight")
        name = backend.name
        backend.preflight()
    except DeliveryError as exc:
        todo = (f"check that {name.upper()} is reachable from this machine and its settings (see "
                "docs/delivery.md)" if "cannot reach" in str(exc) else "fix that and run again")
        raise DeliveryError(f"{exc} (no run was started: {todo}, or run with --delivery outbox or --dry-run)"
                            ) from None
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


def cmd_server(args) -> int:
    from flows.operate.local_server import ensure_server, prefect_home, server_status, stop_server

    if args.action == "start":
        ensure_server(progress=progress)
        print(server_status().describe())
    elif args.action == "stop":
        print("stopped the local Prefect server" if stop_server() else "the local Prefect server was not running")
    else:
        status = server_status()
        print(status.describe())
        if status.state == "stopped":
            print(f"(`exec-reports run` starts it under {prefect_home()}; `exec-reports server start` does now)")
    return 0


def print_summary(summary: dict[str, Any]) -> None:
    rows = [("REPORT", "TENANT", "RECIPIENTS", "STATUS", "OUTBOX PATH / REASON")]
    cwd = Path.cwd()
    for item in summary["sent"]:
        location = item["location"]
        try:
            location = str(Path(location).relative_to(cwd))
        except ValueError:
            pass
        rows.append((item["report"], item["tenant"], ", ".join(item["recipients"]), "sent", location))
    for item in summary["dry_run"]:
        rows.append((item["report"], item["tenant"], ", ".join(item["recipients"]), "dry-run", ""))
    for item in summary["skipped"]:
        rows.append((item["report"], item["tenant"], ", ".join(item.get("recipients", [])), "skipped",
                     item["reason"]))
    for item in summary["failed"]:
        rows.append((item["report"], item["tenant"], ", ".join(item["recipients"]), "FAILED", item["reason"]))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print(f"exec-reports · period {summary['period']}")
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
    fired = summary["checks"]
    if fired:
        print(f"\nchecks: {sum(1 for c in fired if c['status'] == 'fired')} fired, "
              f"{sum(1 for c in fired if c['status'] == 'unknown')} could not be evaluated")
    for warning in summary["warnings"]:
        print(f"warning: {warning}")
    print(f"\n{len(summary['sent'])} sent, {len(summary['failed'])} failed, {len(summary['skipped'])} skipped")


def cmd_deliveries(args) -> int:
    from flows.delivery import with_backend
    from flows.operate.deliveries import period_deliveries, print_unknown

    config, period = config_and_period(args)
    deliveries = period_deliveries(with_backend(config, args.delivery), period, run_is_over=claim_run_liveness())
    print_unknown(deliveries, as_json=args.json)
    return 1 if deliveries.unknown else 0


def claim_run_liveness():
    """What tells whether a claim's run still runs: this machine's run markers, then the Prefect API the
    user configured or the local server when it is running (never started for this: a stopped server
    holds no running run)."""
    from flows.operate.deliveries import run_liveness
    from flows.operate.local_server import configured_api_url, local_run_markers, server_status

    api = configured_api_url()
    if not api:
        status = server_status()
        api = status.info.api_url if status.state == "running" and status.info else None
        if api:
            os.environ["PREFECT_API_URL"] = api
    orchestrator = None
    if api:
        from flows.flow import prefect_run_is_over

        orchestrator = prefect_run_is_over
    return run_liveness(local_run_markers(), orchestrator)


def cmd_history(args) -> int:
    # The server `run` uses (or the configured API, checked first), never a temporary one of Prefect's.
    use_local_server_unless_configured()
    from flows.flow import fetch_delivery_tables
    from flows.orchestrator.history import summarise_history

    tables = fetch_delivery_tables(limit=args.runs)
    history = summarise_history(tables)
    feedback, suppressed = delivery_feedback_of(tables, args.config)
    if args.json:
        print(json.dumps({**history.as_json(), "delivery_feedback": feedback, "suppressed": suppressed}, indent=2))
        return 0
    print_table("Last successful send per report and tenant",
                ("REPORT", "TENANT", "LAST SENT (UTC)", "RECIPIENTS", "FLOW RUN"),
                [(report, tenant, f"{entry['time']:%Y-%m-%d %H:%M}", ", ".join(entry["recipients"]),
                  entry["flow_run_id"]) for (report, tenant), entry in sorted(history.last_sent.items())])
    print()
    print_table("Last failures (newest first)", ("WHEN (UTC)", "REPORT", "TENANT", "REASON", "FLOW RUN"),
                [(f"{f['time']:%Y-%m-%d %H:%M}", f["report"], f["tenant"], f["reason"], f["flow_run_id"])
                 for f in history.failures])
    print()
    print_table("SES delivery feedback per recipient (newest period first)",
                ("PERIOD", "REPORT", "TENANT", "RECIPIENT", "OUTCOME", "WHEN", "DETAIL"),
                [(f["period"], f["report"], f["tenant"], f["recipient"], f["outcome"], f["at"], f["detail"])
                 for f in feedback])
    print()
    print_table("Suppressed addresses (exec-reports suppression clear ADDRESS)", ("ADDRESS", "SINCE", "WHY"),
                [(s["address"], s["since"], s["why"]) for s in suppressed])
    return 0


def delivery_feedback_of(tables, config_path: str | None) -> tuple[list[dict], list[dict]]:
    """What SES reported for the messages of the periods these runs delivered, from the delivery records."""
    from flows.core.config import default_config_path, load_config
    from flows.delivery.feedback import FEEDBACK_BACKEND, SuppressionList
    from flows.delivery.records import open_record_store

    store = open_record_store(load_config(config_path or default_config_path()))
    periods = list(dict.fromkeys(row.get("period") for table in tables for row in table.rows if row.get("period")))
    feedback = []
    for period in periods:
        for record in store.list(FEEDBACK_BACKEND, period):
            for recipient, entry in sorted(record.feedback.items()):
                feedback.append({"period": period, "report": record.key.role, "tenant": record.key.tenant,
                                 "recipient": recipient, "outcome": str(entry.get("outcome", "")),
                                 "at": str(entry.get("at", "")), "detail": str(entry.get("detail", ""))})
    suppressed = [{"address": r.key.recipient, "since": r.updated_at, "why": r.reason}
                  for r in SuppressionList(store).active()]
    return feedback, suppressed


def cmd_suppression(args) -> int:
    import getpass

    from flows.core.config import default_config_path, load_config
    from flows.delivery.feedback import SuppressionList
    from flows.delivery.records import open_record_store

    suppressions = SuppressionList(open_record_store(load_config(args.config or default_config_path())))
    if args.action == "clear":
        if not args.address:
            print("error: suppression clear needs the ADDRESS to mail again", file=sys.stderr)
            return 2
        if not suppressions.clear(args.address, by=getpass.getuser()):
            print(f"{args.address} is not suppressed", file=sys.stderr)
            return 1
        print(f"cleared {args.address}: the next run sends to it again")
        return 0
    print_table("Suppressed addresses", ("ADDRESS", "SINCE", "WHY"),
                [(r.key.recipient, r.updated_at, r.reason) for r in suppressions.active()])
    return 0


def cmd_snapshot(args) -> int:
    """Live data -> a file that a tenant's source settings can point at (e.g. ``sources.aws.snapshot``).
    Exit 1 if a service failed."""
    from flows.core.errors import ConfigurationError
    from flows.gather.gather import source_context
    from sources.catalogue import REGISTRY

    config, period = config_and_period(args)
    tenant = config.tenant(args.tenant)
    raw = tenant.sources.get(args.source)
    if raw is None:
        raise ConfigurationError(f"{config.path}: tenant '{tenant.id}' has no sources.{args.source} settings "
                                 "to snapshot")
    output = Path(args.output)
    warnings = REGISTRY.snapshotters[args.source](raw, source_context(config, tenant, period), output)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {output} ({tenant.id}, period end {period.end})")
    return 1 if warnings else 0
