"""`exec-reports run` as a new operator meets it when something is wrong (issue 28): a wrong argument or
setting is one line and exit status 2 before any server starts; every other failure is one `error:` line
saying what to do, with the traceback in $PREFECT_HOME/exec-reports-cli.log or behind --verbose."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flows.core.config import load_config
from flows.operate.cli import build_parser, main
from tests.conftest import SAMPLE_CONFIG

EXEC_REPORTS = str(Path(sys.executable).parent / "exec-reports")
TENANTS = "jada, queenofsandiego, quickdumpnow, dangerouscentaur"
ROLES = "accounting, ceo, cfo, cmo, cto, gm"


@pytest.fixture(autouse=True)
def _own_prefect_home(tmp_path, monkeypatch):
    """A fresh PREFECT_HOME with no API configured: had anything started a server, it would be here.
    The variables main() sets (telemetry) are put back afterwards."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    for name in ("PREFECT_API_URL", "PREFECT_PROFILE", "EXEC_REPORTS_DELIVERY", "EXEC_REPORTS_TELEMETRY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.setenv("DO_NOT_TRACK", "1")


def cli_env(tmp_path, **extra) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("PREFECT_", "EXEC_REPORTS_", "SMTP_", "SES_"))}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect-home"), **extra})
    return env


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("arguments", "first_line"), [
    (["--roles", "nonexistent"], f"error: --roles: unknown role 'nonexistent' (valid: {ROLES})"),
    (["--roles", "ceo,cf0"], f"error: --roles: unknown role 'cf0' (did you mean 'cfo'? valid: {ROLES})"),
    (["--tenants", "portfolio"], "error: --tenants: 'portfolio' is not a tenant (a portfolio report covers every "
                                 f"tenant the run chooses; valid: {TENANTS})"),
    (["--tenants", "jda"], f"error: --tenants: unknown tenant 'jda' (did you mean 'jada'? valid: {TENANTS})"),
    (["--period", "2026-W60"], "error: --period: period '2026-W60': 2026 has no ISO week 60"),
    (["--period", "last week"], "error: --period: period 'last week': expected an ISO week like 2026-W47 or a "
                                "month like 2026-11"),
    (["--only", "cfo"], "error: --only 'cfo': expected report/tenant or report/tenant/recipient, e.g. "
                        "cfo/portfolio/cfo@holdings.example"),
    (["--only", "zz/portfolio"], f"error: --only 'zz/portfolio': unknown role 'zz' (valid: {ROLES})"),
    (["--only", "cfo/jada"], "error: --only 'cfo/jada': 'jada': cfo is a portfolio report, so its tenant is "
                             "'portfolio' (or 'portfolio:a+b' for some tenants)"),
    (["--only", "gm/portfolio"], f"error: --only 'gm/portfolio': unknown tenant 'portfolio' (valid: {TENANTS})"),
    (["--only", "cfo:short/portfolio"], "error: --only 'cfo:short/portfolio': cfo has no A/B variants "
                                        "(valid: cfo/...)"),
    (["--only", "cfo/portfolio/ceo@holdings.example"],
     "error: --only 'cfo/portfolio/ceo@holdings.example': 'ceo@holdings.example' is not a recipient of this "
     "report (valid: cfo@holdings.example)"),
    (["--roles", "ceo", "--only", "cfo/portfolio"], "error: --only 'cfo/portfolio': role 'cfo' is not among "
                                                    "--roles (valid: ceo)"),
    (["--delivery", "smtp"], "error: SMTP needs a host: set SMTP_HOST or delivery.smtp.host"),
])
def test_a_wrong_run_argument_is_one_line_and_exit_2_before_anything_starts(arguments, first_line, tmp_path,
                                                                            monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SMTP_HOST", raising=False)
    outbox = load_config(SAMPLE_CONFIG).outbox_path
    before = set(outbox.rglob("*.eml")) if outbox.exists() else set()
    assert main(["run", "--config", str(SAMPLE_CONFIG), *arguments]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [first_line]
    assert not (tmp_path / "prefect-home" / "exec-reports-server.json").exists()  # no server was started
    # Nothing sent and no alert: the sample's outbox holds what it held before.
    assert (set(outbox.rglob("*.eml")) if outbox.exists() else set()) == before


def test_a_delivery_backend_from_the_environment_is_checked_too(monkeypatch, capsys):
    monkeypatch.setenv("EXEC_REPORTS_DELIVERY", "pigeon")
    assert main(["run", "--config", str(SAMPLE_CONFIG)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: EXEC_REPORTS_DELIVERY: unknown delivery backend 'pigeon' (valid: outbox, ses, smtp)"]


def test_a_bad_recipient_in_the_config_is_a_usage_error(portfolio_copy, capsys):
    portfolio_copy.write_text(portfolio_copy.read_text().replace("cfo: [cfo@holdings.example]", "cfo: [cfo@@holdings]"))
    assert main(["run", "--config", str(portfolio_copy)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {portfolio_copy}:23: recipients.cfo[0]: 'cfo@@holdings' is not an email address (invalid address "
        "in address-list)"]


def test_the_unknown_role_case_as_a_process_starts_no_server_and_sends_no_alert(portfolio_copy, tmp_path):
    """The issue's first case, as typed: it took 22 s, a server start, a 20-line traceback and an alert."""
    result = subprocess.run([EXEC_REPORTS, "run", "--roles", "nonexistent", "--config", str(portfolio_copy)],
                            env=cli_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: --roles: unknown role 'nonexistent' (valid: {ROLES})"]
    assert result.stdout == ""
    home = tmp_path / "prefect-home"
    assert not (home / "exec-reports-server.json").exists() and not (home / "prefect.db").exists()
    assert not (portfolio_copy.parent.parent / "outbox").exists()  # where this config's messages and alerts go


def test_an_unreachable_prefect_api_is_one_line_saying_what_to_do(tmp_path):
    port = closed_port()
    result = subprocess.run([EXEC_REPORTS, "run", "--config", str(SAMPLE_CONFIG), "--dry-run"],
                            env=cli_env(tmp_path, PREFECT_API_URL=f"http://127.0.0.1:{port}/api"), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: the Prefect API at http://127.0.0.1:{port}/api does not answer ([Errno 111] Connection refused): "
        "start that server, or unset PREFECT_API_URL (and the active Prefect profile's) so that `exec-reports` "
        "uses the local server it starts itself"]


def test_a_prefect_server_too_old_for_the_client_is_one_line(tmp_path, httpserver):
    from importlib.metadata import version

    httpserver.expect_request("/api/health").respond_with_json(True)
    httpserver.expect_request("/api/admin/version").respond_with_json("2.19.3")
    api = httpserver.url_for("/api")
    result = subprocess.run([EXEC_REPORTS, "history", "--config", str(SAMPLE_CONFIG)],
                            env=cli_env(tmp_path, PREFECT_API_URL=api), cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: the Prefect server at {api} runs Prefect 2.19.3, too old for this client (Prefect "
        f"{version('prefect')}; needs a server of version 3.1 or later, same major version): upgrade that server, "
        "or point PREFECT_API_URL at a newer one"]


def test_an_unreachable_smtp_server_stops_the_run_before_it_starts(tmp_path):
    port = closed_port()
    result = subprocess.run([EXEC_REPORTS, "run", "--config", str(SAMPLE_CONFIG), "--delivery", "smtp"],
                            env=cli_env(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=str(port)), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: SMTP preflight against 127.0.0.1:{port} failed, nothing was sent: cannot reach the SMTP server: "
        "ConnectionRefusedError: [Errno 111] Connection refused (no run was started: check that SMTP is reachable "
        "from this machine and its settings (see docs/delivery.md), or run with --delivery outbox or --dry-run)"]
    assert not (tmp_path / "prefect-home" / "exec-reports-server.json").exists()


def test_an_unreachable_ses_endpoint_stops_the_run_before_it_starts(tmp_path):
    port = closed_port()
    result = subprocess.run([EXEC_REPORTS, "run", "--config", str(SAMPLE_CONFIG), "--delivery", "ses"],
                            env=cli_env(tmp_path, SES_REGION="us-east-1", SES_ENDPOINT_URL=f"http://127.0.0.1:{port}",
                                        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing"),
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: SES preflight in us-east-1 failed, nothing was sent: cannot reach SES: EndpointConnectionError: "
        f"Could not connect to the endpoint URL: \"http://127.0.0.1:{port}/\" (no run was started: check that SES is "
        "reachable from this machine and its settings (see docs/delivery.md), or run with --delivery outbox or "
        "--dry-run)"]


def test_a_prefect_home_that_cannot_be_written_is_one_line(tmp_path):
    # /sys refuses every new folder, even to root (this suite may run as root, which file modes do not stop).
    home = "/sys/exec-reports-test-home"
    result = subprocess.run([EXEC_REPORTS, "run", "--config", str(SAMPLE_CONFIG), "--dry-run"],
                            env={**cli_env(tmp_path), "PREFECT_HOME": home}, cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: permission denied on {home}: make it (and its folder) writable for you, or point PREFECT_HOME at a "
        "folder you can write (run again with --verbose for the traceback)"]


def _explode(args):
    raise RuntimeError("something nobody planned for")


def test_an_unexpected_failure_saves_its_traceback_and_says_where(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(__import__("flows.operate.cli", fromlist=["COMMANDS"]).COMMANDS, "metrics",
                        f"{__name__}:_explode")
    assert main(["metrics"]) == 1
    log = tmp_path / "prefect-home" / "exec-reports-cli.log"
    assert capsys.readouterr().err.splitlines() == [
        "error: unexpected RuntimeError: something nobody planned for: run again with --verbose, and report it with "
        f"the traceback if it persists (traceback in {log})"]
    assert "Traceback (most recent call last)" in log.read_text() and "_explode" in log.read_text()

    assert main(["metrics", "--verbose"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last)") and "_explode" in err
    assert err.splitlines()[-1] == ("error: unexpected RuntimeError: something nobody planned for: run again with "
                                    "--verbose, and report it with the traceback if it persists")


def test_run_help_tells_the_truth_about_the_default_period():
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["run"].format_help().split())
    assert ("default: the config's portfolio.default_period when it sets one (the sample portfolio does), else the "
            "last complete week, or month with portfolio.period_kind: month, in portfolio.timezone") in help_text
    assert "the previous one" not in help_text
