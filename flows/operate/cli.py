"""``exec-reports``: the command line's parser and dispatch, and what its commands share (the config and
period of a command, the tables they print). The commands themselves are in ``author_commands`` (check,
preview, diff, metrics: never Prefect, so the author loop stays fast) and ``operator_commands`` (run,
server, history, deliveries, suppression, snapshot); each is imported only when it is the one asked for.
"""

from __future__ import annotations

import argparse
import os
import sys


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


PERIOD_HELP = ("ISO week (2026-W47) or month (2026-11); default: the config's portfolio.default_period when it "
               "sets one (the sample portfolio does), else the last complete week, or month with "
               "portfolio.period_kind: month, in portfolio.timezone")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="portfolio config (default: $EXEC_REPORTS_CONFIG or examples/portfolio.yaml)")
    parser.add_argument("--period", help=PERIOD_HELP)


def _snapshot_sources() -> list[str]:
    from sources.catalogue import REGISTRY

    return sorted(REGISTRY.snapshotters)


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
    snapshot.add_argument("source", choices=_snapshot_sources(), help="which source to snapshot")
    snapshot.add_argument("--tenant", required=True, help="tenant id from the portfolio config")
    snapshot.add_argument("-o", "--output", required=True, help="JSON file to write")
    _add_common(snapshot)
    for command in commands.choices.values():
        command.add_argument("--verbose", action="store_true",
                             help="on a failure, print the traceback here instead of saving it to "
                                  "$PREFECT_HOME/exec-reports-cli.log")
    return parser


COMMANDS = {
    "check": "flows.operate.author_commands:cmd_check",
    "preview": "flows.operate.author_commands:cmd_preview",
    "diff": "flows.operate.author_commands:cmd_diff",
    "metrics": "flows.operate.author_commands:cmd_metrics",
    "run": "flows.operate.operator_commands:cmd_run",
    "server": "flows.operate.operator_commands:cmd_server",
    "history": "flows.operate.operator_commands:cmd_history",
    "deliveries": "flows.operate.operator_commands:cmd_deliveries",
    "suppression": "flows.operate.operator_commands:cmd_suppression",
    "snapshot": "flows.operate.operator_commands:cmd_snapshot",
}


def main(argv: list[str] | None = None) -> int:
    """Every failure ends in one ``error:`` line saying what to do (see ``flows.operate.failures``): exit
    status 2 for a wrong argument or setting, found before anything started; 1 for anything else."""
    import importlib

    from flows.core.telemetry import apply_telemetry_setting
    from flows.operate.failures import report_failure

    args = build_parser().parse_args(argv)
    apply_telemetry_setting()  # before Prefect is imported: it reads these when it loads
    try:
        module, function = COMMANDS[args.command].split(":")
        command = getattr(importlib.import_module(module), function)
        return command(args)
    except Exception as exc:
        return report_failure(exc, command=args.command, verbose=args.verbose)


def config_and_period(args):
    from flows.core.config import default_config_path, load_config_once
    from flows.core.period import resolve_period, today_in

    # Parsed once for the whole command: the flow a run starts in this process reads the same object.
    config = load_config_once(args.config or default_config_path())
    return config, resolve_period(args.period or config.portfolio.default_period, config.portfolio.period_kind,
                                  today_in(config.portfolio.timezone))


def quiet_pipeline_log() -> None:
    """``check`` and ``preview`` print each failure themselves; without a handler Python's last-resort
    handler would print every logged error a second time."""
    import logging

    logger = logging.getLogger("exec_reports")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    print(title)
    if not rows:
        print("  (none)")
        return
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  " + "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
