"""``exec-reports``: check, preview, run, metrics.

``check`` and ``preview`` never import Prefect, so the author loop stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from flows.errors import ReportError


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="portfolio config (default: $EXEC_REPORTS_CONFIG or examples/portfolio.yaml)")
    parser.add_argument("--period", help="ISO week (2026-W47) or month (2026-11); default: the previous one")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exec-reports", description="Role-based executive reports by email.")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="validate every report definition and render each against the data")
    _add_common(check)

    preview = commands.add_parser("preview", help="render one role's report (default and variants) to HTML and "
                                                 "print the paths")
    preview.add_argument("role")
    preview.add_argument("--tenant", help="only this tenant (tenant-scope reports: which one to preview)")
    preview.add_argument("--variant", help="only this A/B variant ('default' for the default report); "
                                           "default: the default report and every variant")
    preview.add_argument("-o", "--output", default="preview", help="folder for the HTML (default: preview/)")
    _add_common(preview)

    diff = commands.add_parser("diff", help="render every report at BASE_REF and in the working tree over the same "
                                           "data and period; show what changed and write side-by-side previews")
    diff.add_argument("base_ref", metavar="BASE_REF", help="git commit, branch or tag to compare with (e.g. origin/main)")
    diff.add_argument("-o", "--output", default="report-diff",
                      help="folder for side-by-side HTML previews and text diffs (default: report-diff/)")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when some report changed (like git diff)")
    _add_common(diff)

    run = commands.add_parser("run", help="run the report flow (Prefect) and deliver")
    run.add_argument("--roles", type=_csv, help="comma-separated roles (default: all)")
    run.add_argument("--tenants", type=_csv, help="comma-separated tenant ids (default: all)")
    run.add_argument("--dry-run", action="store_true", help="render everything, deliver nothing")
    run.add_argument("--json", action="store_true", help="print the JSON summary instead of the table")
    run.add_argument("--resend", action="store_true",
                     help="send again what was already sent for this period (default: send only what is missing)")
    run.add_argument("--delivery", choices=["outbox", "ses", "smtp"],
                     default=os.environ.get("EXEC_REPORTS_DELIVERY") or None,
                     help="delivery backend for this run (default: $EXEC_REPORTS_DELIVERY, else the config's)")
    run.add_argument("--only", action="append", metavar="REPORT/TENANT[/RECIPIENT]",
                     help="deliver only these messages (repeatable), e.g. with --resend the ones "
                          "`deliveries unknown` lists")
    _add_common(run)

    deliveries = commands.add_parser("deliveries", help="delivery records of a period")
    deliveries.add_argument("which", choices=["unknown"],
                            help="unknown: messages whose delivery state is unknown, and how to resend them")
    deliveries.add_argument("--delivery", choices=["outbox", "ses", "smtp"],
                            default=os.environ.get("EXEC_REPORTS_DELIVERY") or None,
                            help="whose records (default: $EXEC_REPORTS_DELIVERY, else the config's backend)")
    deliveries.add_argument("--json", action="store_true", help="print JSON")
    _add_common(deliveries)

    commands.add_parser("metrics", help="list every metric the sources provide")

    server = commands.add_parser("server", help="the local Prefect server that `run` uses when no PREFECT_API_URL "
                                               "is set (status, start, stop)")
    server.add_argument("action", choices=["status", "start", "stop"])

    history = commands.add_parser("history", help="last successful send per report and tenant, and the last "
                                                  "failures, from the Prefect API")
    history.add_argument("--runs", type=int, default=50, help="how many recent runs to read (default 50)")
    history.add_argument("--json", action="store_true", help="print JSON instead of tables")
    history.add_argument("--config", help="portfolio config whose delivery records hold SES feedback "
                                          "(default: $EXEC_REPORTS_CONFIG or examples/portfolio.yaml)")

    suppression = commands.add_parser("suppression", help="addresses suppressed after a permanent bounce or a "
                                                          "complaint: list them, or clear one")
    suppression.add_argument("action", choices=["list", "clear"])
    suppression.add_argument("address", nargs="?", help="with clear: the address to mail again")
    suppression.add_argument("--config", help="portfolio config (default: $EXEC_REPORTS_CONFIG or "
                                              "examples/portfolio.yaml)")

    snapshot = commands.add_parser("snapshot", help="gather one tenant's live source data and save it as JSON")
    snapshot.add_argument("source", choices=["aws"], help="which source to snapshot")
    snapshot.add_argument("--tenant", required=True, help="tenant id from the portfolio config")
    snapshot.add_argument("-o", "--output", required=True, help="JSON file to write")
    _add_common(snapshot)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"check": cmd_check, "preview": cmd_preview, "run": cmd_run, "metrics": cmd_metrics,
                "history": cmd_history, "snapshot": cmd_snapshot, "server": cmd_server,
                "suppression": cmd_suppression,
                "deliveries": cmd_deliveries, "diff": cmd_diff}[args.command](args)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _config_and_period(args):
    from flows.config import default_config_path, load_config
    from flows.period import resolve_period, today_in

    config = load_config(args.config or default_config_path())
    return config, resolve_period(args.period or config.portfolio.default_period, config.portfolio.period_kind,
                                  today_in(config.portfolio.timezone))


def _quiet_pipeline_log() -> None:
    """``check`` and ``preview`` print each failure themselves; without a handler Python's last-resort
    handler would print every logged error a second time."""
    import logging

    logger = logging.getLogger("exec_reports")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


def cmd_check(args) -> int:
    """Everything a run would do, short of delivering: every definition loaded, every report instance,
    override and variant (the default too, assigned or not) rendered with its checks and ``send_if``
    over the config's data. Anything that can fail a run fails here."""
    from flows.definitions import load_definitions
    from flows.pipeline import metric_usage, run_plain

    _quiet_pipeline_log()
    config, period = _config_and_period(args)
    definitions, problems = load_definitions(config.reports_path)
    gathered: dict = {}
    summary, rendered = run_plain(config, period, dry_run=True, loaded=(definitions, problems), every_variant=True,
                                  gathered=gathered)
    definition_failures = [f for f in summary["failed"] if not f["tenant"]]
    render_failures = [f for f in summary["failed"] if f["tenant"]]
    for failure in definition_failures:
        print(failure["reason"], file=sys.stderr)
    for failure in render_failures:
        print(f"{failure['report']}/{failure['tenant']}: {failure['reason']}", file=sys.stderr)
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if definition_failures or render_failures:
        print(f"check failed: {len(definition_failures)} definition problem(s), {len(render_failures)} report(s) "
              f"that did not render", file=sys.stderr)
        return 1
    print(f"ok: {len(definitions)} report definition(s) valid; {len(rendered)} report(s) rendered for "
          f"{period.label} against {config.path}")
    for line in metric_usage(definitions, gathered):
        print(line)
    return 0


def cmd_preview(args) -> int:
    from flows.definitions import group_by_role, load_definitions
    from flows.delivery.base import embed_images
    from flows.errors import ConfigurationError
    from flows.pipeline import metric_usage, run_plain, select

    _quiet_pipeline_log()
    config, period = _config_and_period(args)
    definitions, problems = load_definitions(config.reports_path)
    role_reports = group_by_role(definitions).get(args.role)
    shown = [d for d in definitions if d.role == args.role]
    if args.variant is not None:
        if role_reports is None:
            raise ConfigurationError(f"no loaded report for role '{args.role}' to pick variant '{args.variant}' of")
        names = ["default", *sorted(v.variant for v in role_reports.variants)]
        select([args.variant], names, f"variant of '{args.role}'")
        wanted = "" if args.variant == "default" else args.variant
        shown = [d for d in shown if d.variant == wanted]
    gathered: dict = {}
    summary, rendered = run_plain(config, period, roles=[args.role], tenants=[args.tenant] if args.tenant else None,
                                  dry_run=True, loaded=(definitions, problems), every_variant=True, gathered=gathered)
    for failure in summary["failed"]:
        print(failure["reason"] if not failure["tenant"] else f"{failure['report']}/{failure['tenant']}: "
              f"{failure['reason']}", file=sys.stderr)
    if args.variant is not None:
        suffix = "" if args.variant == "default" else f"-{args.variant}"
        rendered = {key: email for key, email in rendered.items()
                    if key.endswith(f"-{args.role}{suffix}")}
    if not rendered:
        return 1
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for key, email in rendered.items():
        path = output / f"{key}.html"
        # Charts as data: URIs (cid: resolves only inside a message); drawing them is the only time
        # preview imports the chart library.
        path.write_text(embed_images(email.html, email.images), encoding="utf-8")
        (output / f"{key}.md").write_text(email.markdown, encoding="utf-8")
        print(path.resolve())
    for line in metric_usage(shown, gathered):
        print(line, file=sys.stderr)
    return 1 if summary["failed"] else 0


def cmd_diff(args) -> int:
    """What a change to reports/ does to the emails: exit 1 if the working tree's reports fail to render
    (or, with --exit-code, if any report changed)."""
    from flows.reportdiff import diff_reports

    _quiet_pipeline_log()
    config, period = _config_and_period(args)
    output = Path(args.output)
    result = diff_reports(config, period, args.base_ref, output)
    for change in result.changes:
        print(f"{change.status}: {change.key} ({', '.join(change.parts)})")
    for change in result.changes:
        print()
        print(change.text_diff, end="")
    print(f"\n{len(result.changes)} report(s) changed, {len(result.unchanged)} unchanged since {args.base_ref} "
          f"({period.label}); side-by-side previews: {(output / 'index.html').resolve()}")
    for failure in result.failures:
        print(failure, file=sys.stderr)
    if result.failures:
        print(f"diff: {len(result.failures)} report(s) fail with the working tree's definitions", file=sys.stderr)
        return 1
    return 1 if args.exit_code and result.changes else 0


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def use_local_server_unless_configured() -> None:
    """Point Prefect at the long-lived local server (started when needed) unless the user configured an API.

    Must run before Prefect is imported: Prefect reads PREFECT_API_URL when its settings load."""
    from flows.local_server import configured_api_url, ensure_server

    if configured_api_url():
        return
    info = ensure_server(progress=_progress)
    os.environ["PREFECT_API_URL"] = info.api_url
    os.environ.setdefault("PREFECT_UI_URL", info.ui_url)


def cmd_run(args) -> int:
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "exec_reports")
    from flows.local_server import LOCAL_RUN_MARKERS_ENV, local_run_markers

    config, period = _config_and_period(args)  # fail fast with a clear message before Prefect starts
    from flows.delivery.selection import Selection

    Selection.parse(args.only)  # a bad selector is an error before Prefect starts, too
    use_local_server_unless_configured()
    markers = local_run_markers()
    from flows.flow import mark_killed_local_runs_crashed, run_summary, run_url, send_exec_reports

    for name in mark_killed_local_runs_crashed(markers):
        _progress(f"note: the earlier run '{name}' was killed before it finished: marked Crashed, operations alerted")
    # Only the run this command starts leaves a marker (the variable is gone again afterwards, so a
    # program that calls main() and then runs flows itself leaves none).
    os.environ[LOCAL_RUN_MARKERS_ENV] = str(markers.folder)
    try:
        # The period is worked out here, as `check` and `preview` do, and passed on: one default everywhere.
        state = send_exec_reports(roles=args.roles, tenants=args.tenants, period=period.label,
                                  dry_run=args.dry_run, config=str(config.path), resend=args.resend,
                                  delivery=args.delivery, only=args.only, return_state=True)
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


def cmd_server(args) -> int:
    from flows.local_server import ensure_server, prefect_home, server_status, stop_server

    if args.action == "start":
        ensure_server(progress=_progress)
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
    from flows.deliveries import period_deliveries, print_unknown
    from flows.delivery import with_backend

    config, period = _config_and_period(args)
    deliveries = period_deliveries(with_backend(config, args.delivery), period)
    print_unknown(deliveries, as_json=args.json)
    return 1 if deliveries.unknown else 0


def cmd_metrics(args) -> int:
    from sources import REGISTRY

    specs = sorted(REGISTRY.metrics.values(), key=lambda s: s.name)
    width = max(len(s.name) for s in specs)
    for spec in specs:
        print(f"{spec.name.ljust(width)}  {spec.type:<8} {spec.source:<10} {spec.description}")
    return 0


def cmd_history(args) -> int:
    from flows.flow import fetch_delivery_tables
    from flows.history import summarise_history

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
    from flows.config import default_config_path, load_config
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

    from flows.config import default_config_path, load_config
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


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    print(title)
    if not rows:
        print("  (none)")
        return
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  " + "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def cmd_snapshot(args) -> int:
    """Live AWS -> JSON that a tenant's ``sources.aws.snapshot`` can point at. Exit 1 if a service failed."""
    from flows.errors import ConfigurationError
    from flows.pipeline import source_context
    from sources.aws import gather_live, write_snapshot
    from sources.aws.settings import parse_settings

    config, period = _config_and_period(args)
    tenant = config.tenant(args.tenant)
    raw = tenant.sources.get("aws")
    if raw is None:
        raise ConfigurationError(f"{config.path}: tenant '{tenant.id}' has no sources.aws settings to snapshot")
    # The snapshot is always taken from live AWS, even for a tenant that currently reads one.
    settings = parse_settings({k: v for k, v in raw.items() if k != "snapshot"}, tenant.id)
    values = gather_live(settings, source_context(config, tenant, period))
    output = Path(args.output)
    write_snapshot(output, values, tenant.id, period.end)
    for error in values["aws.service_errors"]:
        print(f"warning: {error['service']}: {error['reason']}", file=sys.stderr)
    print(f"wrote {output} ({tenant.id}, period end {period.end})")
    return 1 if values["aws.service_errors"] else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
