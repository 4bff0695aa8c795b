"""How a command ends when something fails: one ``error:`` line that says what to do. The traceback is
written to ``$PREFECT_HOME/exec-reports-cli.log`` (the line says so) or, with ``--verbose``, printed.

No Prefect here: the errors it recognises (the Prefect API going away in the middle of a command) are
told apart by their type's name and module, so a failure to import Prefect is reported too."""

from __future__ import annotations

import datetime as dt
import os
import sys
import traceback
from pathlib import Path

from flows.core.errors import ReportError, UsageError

CLI_LOG_FILE = "exec-reports-cli.log"
USAGE_EXIT_STATUS = 2


def cli_log_path() -> Path:
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    return home / CLI_LOG_FILE


def save_traceback(exc: BaseException, command: str) -> Path | None:
    """The traceback appended to the CLI log; None when the log cannot be written either."""
    path = cli_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"\n--- exec-reports {command} failed at {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}Z\n")
            log.write("".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return path


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _api_unreachable(exc: BaseException) -> bool:
    for error in _chain(exc):
        module = type(error).__module__
        if module.startswith(("httpx", "httpcore")) or "Failed to reach API" in str(error):
            return True
    return False


def explain(exc: BaseException) -> tuple[str, bool]:
    """The error line for ``exc`` (without ``error: ``), and whether its traceback is worth keeping."""
    if isinstance(exc, ReportError):
        return str(exc), False
    if isinstance(exc, PermissionError):
        where = str(exc.filename or "a file")
        home = str(cli_log_path().parent)
        setting = "PREFECT_HOME" if where == home or where.startswith(home + os.sep) else "the setting that names it"
        return (f"permission denied on {where}: make it (and its folder) writable for you, or point {setting} "
                f"at a folder you can write"), True
    if _api_unreachable(exc):
        api = os.environ.get("PREFECT_API_URL") or "the Prefect API"
        return (f"lost the connection to {api} ({type(exc).__name__}: {exc}): check that the server is "
                f"running (`exec-reports server status`) and run the command again"), True
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc}: check the file or connection it names and run again", True
    return (f"unexpected {type(exc).__name__}: {exc}: run again with --verbose, and report it with the "
            f"traceback if it persists"), True


def report_failure(exc: BaseException, *, command: str, verbose: bool) -> int:
    """Print the one line (and the traceback with --verbose); the exit status."""
    if isinstance(exc, UsageError):
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_EXIT_STATUS
    line, keep = explain(exc)
    if keep and verbose:
        traceback.print_exception(exc, file=sys.stderr)
    elif keep:
        saved = save_traceback(exc, command)
        line += f" (traceback in {saved})" if saved else " (run again with --verbose for the traceback)"
    print(f"error: {line}", file=sys.stderr)
    return 1
