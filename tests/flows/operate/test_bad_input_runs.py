"""`exec-reports run` over a report file built to exhaust the parser (case 1 of the second hardening pass):
that report fails alone with its file and line, the other roles are delivered, and the process exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flows.devtools.prefect_server import LocalPrefectServer
from tests.conftest import SAMPLE_PERIOD
from tests.flows.core.test_yamlsource import alias_bomb

EXEC_REPORTS = str(Path(sys.executable).parent / "exec-reports")


@pytest.fixture
def prefect_server(tmp_path):
    with LocalPrefectServer(tmp_path / "prefect-server", database_prefix="exec_reports_bomb") as server:
        yield server


def test_an_alias_bomb_in_one_reports_front_matter_fails_it_alone_and_the_run_delivers_the_rest_and_exits(
        portfolio_copy, prefect_server):
    ceo = portfolio_copy.parent.parent / "reports" / "ceo.md"
    text = ceo.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    ceo.write_text("---\n" + alias_bomb() + text[4:], encoding="utf-8")
    env = {name: value for name, value in prefect_server.client_env().items() if not name.startswith("EXEC_REPORTS_")}
    env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    command = [EXEC_REPORTS, "run", "--config", str(portfolio_copy), "--period", SAMPLE_PERIOD, "--json"]

    # subprocess.run's timeout kills the child and fails the test: a hung run cannot pass.
    whole = subprocess.run(command, env=env, cwd=portfolio_copy.parent.parent, capture_output=True, text=True,
                           timeout=240)
    assert whole.returncode == 1, whole.stderr[-3000:]
    summary = json.loads(whole.stdout)
    sent = {item["report"] for item in summary["sent"]}
    assert {"cfo", "cto", "cmo", "accounting", "gm"} <= sent and "ceo" not in sent
    [failure] = [item for item in summary["failed"] if item["report"] == "ceo"]
    assert "reports/ceo.md:6: YAML aliases expand to" in failure["reason"]
    assert [item for item in summary["failed"] if item["report"] != "ceo"] == []

    alone = subprocess.run([*command, "--roles", "ceo"], env=env, cwd=portfolio_copy.parent.parent,
                           capture_output=True, text=True, timeout=240)
    assert alone.returncode == 1, alone.stderr[-3000:]
    summary = json.loads(alone.stdout)
    assert summary["sent"] == [] and [item["report"] for item in summary["failed"]] == ["ceo"]
